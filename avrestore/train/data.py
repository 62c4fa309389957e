"""The datasets a config's ``data`` section describes (prepared clips, one task)."""

from __future__ import annotations

from torch.utils.data import Dataset

from avrestore.data.datasets import FaceWindowDataset
from avrestore.errors import InputError


def build_dataset(cfg: dict, split: str) -> Dataset:
    """Training (random patches) or validation (fixed full frames) windows of ``split``."""
    data = cfg.get("data") or {}
    if "root" not in data or "task" not in cfg:
        raise InputError("config needs data.root (a prepared folder) and task")
    train = split == "train"
    dataset = FaceWindowDataset(
        data["root"],
        split=split,
        task=cfg["task"],
        n=int(data.get("n", 1)),
        patch=data.get("patch", 128) if train else data.get("val_patch"),
        seed=int(cfg.get("seed", 0)),
        cache=data.get("cache"),
    )
    # Caches are built once here, before DataLoader workers fork and inherit them.
    dataset.build_caches()
    return dataset
