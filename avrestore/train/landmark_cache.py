"""Landmarks a landmark network predicts from the LQ clips a restorer trains on.

A restorer is deployed with landmarks predicted from the degraded frames (8-9 px from dlib's
on the clean ones at 224²), so it trains on the same: before training, the landmark network
runs once over every training and validation clip at every level the task draws, and the
results are cached per network as ``<cache>/landmarks/<net>-<digest>/<level key>/<clip>.npy``
(the digest of the weights file, so retrained weights never reuse stale predictions).
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
from tqdm import tqdm

from avrestore.data.datasets import FaceWindowDataset
from avrestore.errors import InputError
from avrestore.media.files import atomic_path
from avrestore.models.landmark_net import LandmarkNet
from avrestore.models.weights import load_model, weights_path


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()[:12]


def predicted_landmarks(datasets: list[FaceWindowDataset], net_name: str) -> Path:
    """Make (or find) the landmark network ``net_name``'s predictions for every clip and level
    of ``datasets``; returns the folder to give them as ``landmark_dir``."""
    path = weights_path(net_name)
    if not path.is_file():
        raise InputError(f"data.landmarks: no landmark network weights {path}")
    net = load_model(path)
    if not isinstance(net, LandmarkNet):
        raise InputError(f"data.landmarks: {path} holds a {type(net).__name__}, not a LandmarkNet")
    folder = datasets[0].cache / "landmarks" / f"{path.stem}-{_digest(path)}"
    jobs = [
        (ds, clip, level)
        for ds in datasets
        for level in ds.task.levels()
        for clip in ds.clips
        if not (folder / ds.task.key(level) / f"{clip.clip_id}.npy").is_file()
    ]
    for ds, clip, level in tqdm(jobs, desc="landmarks", unit="clip", disable=not jobs):
        audio = ds.audio_windows(clip) if clip.has_audio else None
        points = net.predict_frames(ds.lq_clip(clip, level), audio)
        out = folder / ds.task.key(level) / f"{clip.clip_id}.npy"
        out.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(out) as tmp, open(tmp, "wb") as f:
            np.save(f, points.astype(np.float32))
    return folder
