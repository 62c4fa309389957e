"""The datasets a config's ``data`` section describes (prepared clips, one task).

``data.levels`` (e.g. ``{blur: [21, 21]}``) replaces the task's degradation ranges;
``data.compress_at`` (``[crop]``, ``[source]`` or both) where ``car``'s copy is compressed;
``data.landmarks`` is ``teacher`` (dlib on the HQ frames) or a landmark network (a shipped name
or a weights path) whose predictions from the LQ frames the restorer then trains on.
"""

from __future__ import annotations

from pathlib import Path

from avrestore.data.datasets import FaceWindowDataset
from avrestore.degrade import DegradationRanges
from avrestore.errors import InputError
from avrestore.train.landmark_cache import predicted_landmarks


def _levels(data: dict) -> DegradationRanges | None:
    levels = data.get("levels")
    if levels is None:
        return None
    try:
        return DegradationRanges(**{k: (int(v[0]), int(v[1])) for k, v in levels.items()})
    except (TypeError, ValueError, IndexError) as e:
        raise InputError(f"data.levels must map blur/downscale/crf to [low, high] ({e})") from None


def build_datasets(cfg: dict) -> tuple[FaceWindowDataset, FaceWindowDataset | None]:
    """Training (random patches) and validation (fixed full frames, unless ``validate`` is
    off) windows, their caches and landmarks made before DataLoader workers fork."""
    data = cfg.get("data") or {}
    if "root" not in data or "task" not in cfg:
        raise InputError("config needs data.root (a prepared folder) and task")
    splits = ["train"] + (["val"] if (cfg.get("train") or {}).get("validate", True) else [])
    sets = [
        FaceWindowDataset(
            data["root"],
            split=split,
            task=cfg["task"],
            n=int(data.get("n", 1)),
            patch=data.get("patch", 128) if split == "train" else data.get("val_patch"),
            seed=int(cfg.get("seed", 0)),
            levels=_levels(data),
            cache=data.get("cache"),
            compress_at=tuple(data["compress_at"]) if data.get("compress_at") else None,
        )
        for split in splits
    ]
    for dataset in sets:
        dataset.build_caches()
    source = str(data.get("landmarks", "teacher"))
    takes_landmarks = (cfg.get("model") or {}).get("use_landmarks", True) is not False
    if source != "teacher" and takes_landmarks:
        folder: Path = predicted_landmarks(sets, source)
        for dataset in sets:
            dataset.landmark_dir = folder
    return sets[0], (sets[1] if len(sets) > 1 else None)
