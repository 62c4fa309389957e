"""Landmarks the deployed landmarker finds on the LQ clips a restorer trains on.

A restorer is deployed with landmarks found on the degraded crops (``models.landmarkers``),
so it trains on the same: before training, the landmarker runs once over every training and
validation clip at every level the task draws, and the results are cached per landmarker as
``<cache>/landmarks-<tag>/<landmarker>/<level key>/<clip>.npy``; a landmark network's folder name
carries the digest of its weights file, so retrained weights never reuse stale predictions.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
from tqdm import tqdm

from avrestore.audio.features import MFCC_WINDOW, N_MFCC
from avrestore.data.clip_cache import cache_folder, save_array
from avrestore.data.datasets import FaceWindowDataset
from avrestore.errors import InputError
from avrestore.models.landmarkers import DLIB, load_landmarker
from avrestore.models.weights import weights_path


def _folder_name(name: str) -> str:
    if name == DLIB:
        return DLIB
    path = weights_path(name)
    if not path.is_file():
        raise InputError(f"data.landmarks: no landmark network weights {path}")
    return f"{path.stem}-{hashlib.sha256(path.read_bytes()).hexdigest()[:12]}"


def predicted_landmarks(datasets: list[FaceWindowDataset], name: str) -> Path:
    """Make (or find) the landmarker ``name``'s landmarks for every clip and level of
    ``datasets``; returns the folder to give them as ``landmark_dir``."""
    folder = cache_folder(datasets[0].cache, "landmarks") / _folder_name(name)
    jobs = [
        (ds, clip, level)
        for ds in datasets
        for level in ds.task.levels()
        for clip in ds.clips
        if not (folder / ds.task.key(level) / f"{clip.clip_id}.npy").is_file()
    ]
    if not jobs:
        return folder
    landmarker = load_landmarker(name)
    a = landmarker.audio
    if a is not None and (a.window, a.n_mfcc) != (MFCC_WINDOW, N_MFCC):
        raise InputError(f"data.landmarks: {name} reads MFCC windows of {a.window}x{a.n_mfcc}")
    for ds, clip, level in tqdm(jobs, desc="landmarks", unit="clip"):
        audio = ds.audio_windows(clip) if clip.has_audio and a is not None else None
        points = landmarker.predict_frames(ds.lq_clip(clip, level), audio)
        save_array(points.astype(np.float32), folder / ds.task.key(level) / f"{clip.clip_id}.npy")
    return folder
