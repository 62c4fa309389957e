"""The datasets a config's ``data`` section describes (prepared clips, one task).

``data.levels`` (e.g. ``{blur: [21, 21]}``) replaces the task's degradation ranges;
``data.compress_at`` (``[crop]``, ``[source]`` or both) where ``car``'s copy is compressed;
``data.landmarks`` is ``teacher`` (dlib on the HQ frames) or a landmark network (a shipped name
or a weights path) whose predictions from the LQ frames the restorer then trains on. What the
models of the stages declare in their contracts decides the rest, in this one place: items
carry the side data the dataset can give (``qp``, for DAVD-Net's CPM; see
``FaceWindowDataset``) and the MFCC windows the models read (GAVN's and DAVD-Net's 21 x 13, the
VQ restorer's 21 x 80), and patches must fit their ``train_multiple``.
"""

from __future__ import annotations

import math
from pathlib import Path

import torch

from avrestore.data.datasets import FaceWindowDataset
from avrestore.errors import InputError
from avrestore.models.contract import AudioInput, LandmarkerContract, RestorerContract
from avrestore.models.registry import build
from avrestore.train.landmark_cache import predicted_landmarks
from avrestore.train.schema import ExperimentConfig, portable_spec

Contract = RestorerContract | LandmarkerContract


def stage_contracts(cfg: ExperimentConfig) -> list[Contract | None]:
    """The contract of each stage's model (None for a model without one). The models are built
    on the meta device (no memory, no weights; without the arguments that load weights files,
    ``portable_spec``) with the RNG state restored after, so that reading a contract changes
    neither the time nor the initialisation of the run."""
    contracts: list[Contract | None] = []
    for stage in cfg.train.stages:
        spec = portable_spec(cfg.stage_model(stage))
        with torch.random.fork_rng(devices=[]), torch.device("meta"):
            contract = getattr(build(spec.pop("type"), **spec), "contract", None)
        contracts.append(contract if isinstance(contract, Contract) else None)
    return contracts


def _audio_input(contracts: list[Contract | None]) -> AudioInput:
    """The MFCC windows the stages' models read: one kind per run; the default windows when
    no model reads any (items still carry them, unused)."""
    kinds = {c.audio for c in contracts if c is not None and c.audio is not None}
    if len(kinds) > 1:
        sizes = ", ".join(sorted(f"{a.window}x{a.n_mfcc}" for a in kinds))
        raise InputError(
            f"the stages' models read different MFCC windows ({sizes}); train them in two runs"
        )
    return kinds.pop() if kinds else AudioInput()


def _check_sides(cfg: ExperimentConfig, dataset: FaceWindowDataset, multiple: int) -> None:
    """One InputError line unless the frames ``dataset`` gives have sides that are multiples
    of ``multiple`` (a model whose training losses do not pad, e.g. the VQ models' 16)."""
    key = "data.patch" if dataset.train else "data.val_patch"
    if dataset.patch is not None:
        sides, what = {dataset.patch}, f"{key} {dataset.patch}"
    else:
        sides = {side for clip in dataset.clips for side in clip.size}
        what = f"the whole crops of {cfg.data.root} ({key} null: {sorted(sides)})"
    if any(side % multiple for side in sides):
        raise InputError(
            f"{cfg.model['type']} trains on frames whose sides are multiples of {multiple}, "
            f"not {what}"
        )


def build_datasets(
    cfg: ExperimentConfig, contracts: list[Contract | None]
) -> tuple[FaceWindowDataset, FaceWindowDataset | None]:
    """Training (random patches) and validation (fixed full frames, unless ``validate`` is
    off) windows of what the stages' models (their ``contracts``) read: their MFCC windows,
    side data, and sides that fit their ``train_multiple``; caches and landmarks made before
    DataLoader workers fork."""
    data = cfg.data
    splits = ["train"] + (["val"] if cfg.train.validate else [])
    restorers = [c for c in contracts if isinstance(c, RestorerContract)]
    qp = any("qp" in c.side_data for c in restorers)
    multiple = math.lcm(1, *(c.train_multiple for c in restorers))
    audio = _audio_input(contracts)
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
            audio_window=audio.window,
            n_mfcc=audio.n_mfcc,
        )
        for split in splits
    ]
    for dataset in sets:  # before the caches: a misfit costs no time
        _check_sides(cfg, dataset, multiple)
    for dataset in sets:
        dataset.build_caches()
    takes_landmarks = cfg.model.get("use_landmarks", True) is not False
    if data.landmarks != "teacher" and takes_landmarks:
        folder: Path = predicted_landmarks(sets, data.landmarks)
        for dataset in sets:
            dataset.landmark_dir = folder
    return sets[0], (sets[1] if len(sets) > 1 else None)
