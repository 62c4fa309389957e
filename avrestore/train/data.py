"""The datasets a config's ``data`` section describes (prepared clips, one task).

``data.levels`` (e.g. ``{blur: [21, 21]}``) replaces the task's degradation ranges;
``data.compress_at`` (``[crop]``, ``[source]`` or both) where ``car``'s copy is compressed;
``data.landmarks`` is ``teacher`` (dlib on the HQ frames) or a landmark network (a shipped name
or a weights path) whose predictions from the LQ frames the restorer then trains on. Items
carry the side data the models of the stages declare and the dataset can give (``qp``, for
DAVD-Net's CPM; see ``FaceWindowDataset``).
"""

from __future__ import annotations

from pathlib import Path

import torch

from avrestore.data.datasets import FaceWindowDataset
from avrestore.models.contract import RestorerContract
from avrestore.models.registry import build
from avrestore.train.landmark_cache import predicted_landmarks
from avrestore.train.schema import ExperimentConfig


def declared_side_data(cfg: ExperimentConfig) -> set[str]:
    """The side data any stage's model declares in its contract. The models are built on the
    meta device (no memory, no weights) with the RNG state restored after, so that reading a
    contract changes neither the time nor the initialisation of the run."""
    names: set[str] = set()
    for stage in cfg.train.stages:
        spec = cfg.stage_model(stage)
        with torch.random.fork_rng(devices=[]), torch.device("meta"):
            contract = getattr(build(spec.pop("type"), **spec), "contract", None)
        if isinstance(contract, RestorerContract):
            names.update(contract.side_data)
    return names


def build_datasets(cfg: ExperimentConfig) -> tuple[FaceWindowDataset, FaceWindowDataset | None]:
    """Training (random patches) and validation (fixed full frames, unless ``validate`` is
    off) windows, their caches and landmarks made before DataLoader workers fork."""
    data = cfg.data
    splits = ["train"] + (["val"] if cfg.train.validate else [])
    qp = "qp" in declared_side_data(cfg)
    sets = [
        FaceWindowDataset(
            data.root,
            split=split,
            task=cfg.task,
            n=data.n,
            patch=data.patch if split == "train" else data.val_patch,
            seed=cfg.seed,
            levels=data.levels,
            cache=data.cache,
            compress_at=data.compress_at,
            qp=qp,
        )
        for split in splits
    ]
    for dataset in sets:
        dataset.build_caches()
    takes_landmarks = cfg.model.get("use_landmarks", True) is not False
    if data.landmarks != "teacher" and takes_landmarks:
        folder: Path = predicted_landmarks(sets, data.landmarks)
        for dataset in sets:
            dataset.landmark_dir = folder
    return sets[0], (sets[1] if len(sets) > 1 else None)
