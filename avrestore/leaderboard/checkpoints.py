"""The shipped checkpoints: ``<name>.safetensors`` files whose metadata names their task, and
the VQ autoencoders whose ceiling is shown (``--ceiling``)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from avrestore.errors import InputError
from avrestore.evaluate.ceiling import check_vq_autoencoder
from avrestore.media.files import sha256_file
from avrestore.models.weights import read_metadata, resolve_model, weights_path

CEILING = "ceiling"  # the task under which the ceilings' checkpoints and cache entries go


@dataclass(frozen=True)
class Checkpoint:
    """A restoration checkpoint: its name (the file stem), file, task and content digest."""

    name: str
    path: Path
    task: str
    sha256: str


def find_checkpoints(weights_dir: Path) -> dict[str, list[Checkpoint]]:
    """Task → its checkpoints in ``weights_dir``, by name; files without a ``task`` (landmark
    networks) are left out. InputError if the folder does not exist."""
    if not weights_dir.is_dir():
        raise InputError(f"weights folder does not exist: {weights_dir}")
    found: dict[str, list[Checkpoint]] = {}
    for path in sorted(weights_dir.glob("*.safetensors")):
        if path.name.startswith("."):  # a file being written (atomic_path's temporary name)
            continue
        task = read_metadata(path).get("task")
        if task is not None:
            found.setdefault(task, []).append(Checkpoint(path.stem, path, task, sha256_file(path)))
    return found


def ceiling_checkpoint(name: str) -> Checkpoint:
    """The VQ autoencoder ``name`` (a shipped name or a weights path) as a checkpoint of the
    ``CEILING`` task; InputError unless the file exists and holds one that quantises."""
    check_vq_autoencoder(resolve_model(name), name)
    path = weights_path(name)
    return Checkpoint(path.stem, path, CEILING, sha256_file(path))
