"""What the page offers: per kind of damage, the checkpoints that restore it, each with its
leaderboard figures (PSNR gain over the task's reference and seconds per frame)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

from avrestore.evaluate.methods import BICUBIC, INPUT
from avrestore.leaderboard.cache import key_id, load_entries
from avrestore.leaderboard.checkpoints import Checkpoint, find_checkpoints
from avrestore.models.weights import WEIGHTS_DIR
from avrestore.restore.video import TASKS, default_model

# The results cache ``avrestore leaderboard`` writes beside its page in a source checkout.
LEADERBOARD_JSON = Path(__file__).resolve().parents[2] / "docs" / "leaderboard.json"

# The damage each task undoes, as the page names it.
DAMAGE = {
    "car": "Compression artefacts",
    "deblur": "Blur",
    "sr": "Low resolution (upscaled x4)",
}


@dataclass(frozen=True)
class ModelChoice:
    """A checkpoint offered for a task, with its leaderboard figures when it was evaluated:
    the PSNR gain in dB over ``reference`` (``input``, or ``bicubic`` for sr) and the seconds
    per restored frame on the ``threads`` CPU threads it was timed with."""

    name: str
    task: str
    path: Path
    psnr_gain: float | None = None
    reference: str | None = None
    seconds_per_frame: float | None = None
    threads: int | None = None

    def as_json(self) -> dict:
        """The choice as the page reads it (without the file's path)."""
        found = asdict(self)
        del found["path"]
        return found


def _figures(checkpoint: Checkpoint, entries: list[dict]) -> dict:
    """The leaderboard figures of ``checkpoint`` (found by its content's digest); none if it
    was not evaluated."""
    by_key = {key_id(e["key"]): e for e in entries}
    for entry in entries:
        key = entry["key"]
        if key["task"] != checkpoint.task or key["method"] != f"sha256:{checkpoint.sha256}":
            continue
        # As the leaderboard's plot measures it: over bicubic where the task downscales,
        # else over the degraded input, both scored on the same clips and frames.
        for reference in (BICUBIC, INPUT):
            base = by_key.get(key_id({**key, "method": reference}))
            if base is not None:
                scores = entry["scores"]
                return {
                    "psnr_gain": scores["psnr"] - base["scores"]["psnr"],
                    "reference": reference,
                    "seconds_per_frame": scores["seconds"],
                    "threads": entry["evaluated"]["machine"].get("threads"),
                }
    return {}


def model_choices(
    weights_dir: Path | None = None, leaderboard: Path | None = None
) -> dict[str, list[ModelChoice]]:
    """Task → its checkpoints in ``weights_dir`` (default: the shipped ones), the task's
    default first, with the figures of ``leaderboard`` (a results cache, by default the
    checkout's; no figures if the file is missing). Tasks ``restore`` does not know (a future
    checkpoint's) are left out."""
    entries = load_entries(LEADERBOARD_JSON if leaderboard is None else leaderboard)
    found = find_checkpoints(WEIGHTS_DIR if weights_dir is None else weights_dir)
    choices = {}
    for task in TASKS:
        ordered = sorted(found.get(task, []), key=lambda c: (c.name != default_model(task), c.name))
        if ordered:
            choices[task] = [
                ModelChoice(c.name, task, c.path, **_figures(c, entries)) for c in ordered
            ]
    return choices
