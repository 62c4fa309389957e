"""The leaderboard's JSON cache: one entry per evaluated task, level, method and settings, so
that a rerun evaluates only new or changed checkpoints.

An entry's ``key`` says what its results depend on: the task and level, the method
(``input``, ``bicubic`` or ``sha256:<digest>`` of a checkpoint file, so that a renamed file
keeps its results and a retrained one loses them), the clips, ``max_frames``, ``every`` and the
NIQE parameters. The preview frames are kept too (PNG, base64), so that the pictures need no
model either.
"""

from __future__ import annotations

import base64
import json
from dataclasses import asdict, dataclass
from pathlib import Path

import cv2
import numpy as np

from avrestore.errors import InputError
from avrestore.media.files import atomic_path

# Bump when scores change meaning (a metric, the protocol): older files are evaluated again.
FORMAT = 1


@dataclass(frozen=True)
class Settings:
    """What every result of a run depends on besides the task and the method: the clips
    (digest of their ids and metadata), the frames scored and the NIQE parameters (digest)."""

    clips: str
    max_frames: int
    every: int
    niqe: str | None


def entry_key(task: str, level: int, method: str, settings: Settings) -> dict:
    """The key of one method's results (``method``: a reference's name or ``sha256:<hex>``)."""
    return {"task": task, "level": level, "method": method, **asdict(settings)}


def key_id(key: dict) -> str:
    """A key as one comparable string."""
    return json.dumps(key, sort_keys=True)


def load_entries(path: Path) -> list[dict]:
    """The entries of the cache file ``path``; none if it is missing or of an older format.
    InputError for a file that is no leaderboard cache, rather than overwrite it."""
    if not path.is_file():
        return []
    try:
        doc = json.loads(path.read_text())
    except (UnicodeDecodeError, json.JSONDecodeError):
        doc = None
    if not (isinstance(doc, dict) and isinstance(doc.get("entries"), list)):
        raise InputError(f"{path} is not a leaderboard cache; remove it or give --cache-json")
    return doc["entries"] if doc.get("format") == FORMAT else []


def save_entries(path: Path, entries: list[dict]) -> None:
    """Write the cache file ``path``, whole or not at all."""
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps({"format": FORMAT, "entries": entries}, indent=1) + "\n")


def encode_png(image: np.ndarray) -> str:
    """An (H, W, 3) uint8 RGB image as base64 PNG text."""
    ok, data = cv2.imencode(".png", cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
    if not ok:
        raise ValueError(f"cannot encode a {image.dtype} {image.shape} image as PNG")
    return base64.b64encode(data.tobytes()).decode("ascii")


def decode_png(text: str) -> np.ndarray:
    """The RGB image of ``encode_png``'s text."""
    data = np.frombuffer(base64.b64decode(text), np.uint8)
    return cv2.cvtColor(cv2.imdecode(data, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
