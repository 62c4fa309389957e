"""Lip-sync scores Sync_c / Sync_d with SyncNet, following joonson/syncnet_python.

Pipeline, as ``run_pipeline.py`` + ``SyncNetInstance.evaluate`` do it:

* video at 25 fps (other rates are resampled by nearest frame);
* face crops as ``crop_video``: a face box per frame (here the extent of the HQ frame's 68
  landmarks, standing in for the S3FD detection), its half-side ``s`` and centre median-
  filtered over 13 frames, the frame padded with grey 110, the crop rows
  ``[y − s, y + 1.8 s)`` and columns ``[x − 1.4 s, x + 1.4 s)`` (crop scale 0.4) resized to
  224×224, BGR in [0, 255] — the whole face, not only its lower half;
* audio: MFCCs of the 16 kHz signal at int16 scale (python_speech_features defaults,
  100 steps/s); window i takes frames ``[i, i+5)`` and MFCC steps ``[4i, 4i+20)``, for
  ``i < min(frames, ⌊samples/640⌋) − 5``;
* offset search (``calc_pdist``): for every window, the distance of its video embedding to
  the audio embeddings shifted by −15…+15 windows (zero vectors beyond the ends); averaged
  over windows, the minimum is Sync_d, median − minimum is Sync_c, and the offset is
  ``15 − argmin``.

Clips under 13 frames get no score (upstream tracks are at least 100 frames long).
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from scipy.signal import medfilt

from avrestore.audio.features import mfcc
from avrestore.metrics.mouth import face_extent
from avrestore.metrics.syncnet_model import SyncNet

FPS = 25
RATE = 16000
VSHIFT = 15
CROP_SCALE = 0.4
CROP_SIZE = 224
PAD_VALUE = 110
SMOOTH = 13  # median filter length over the face track
CLIP = 5  # video frames per window
STEPS_PER_FRAME = 4  # MFCC steps per video frame at 100 Hz / 25 fps
INT16_SCALE = 32768.0


@dataclass(frozen=True)
class SyncResult:
    """Mean distance per shift (2·VSHIFT + 1,), and what is read from it."""

    distances: np.ndarray
    offset: int
    sync_d: float
    sync_c: float


def offset_search(video: torch.Tensor, audio: torch.Tensor, vshift: int = VSHIFT) -> SyncResult:
    """Compare window embeddings (N, D) of video and audio over shifts −vshift … +vshift.

    Column k of the distance table pairs video window i with audio window i + k − vshift.
    """
    padded = F.pad(audio, (0, 0, vshift, vshift))
    width = 2 * vshift + 1
    table = torch.stack(
        [
            F.pairwise_distance(video[i : i + 1].expand(width, -1), padded[i : i + width])
            for i in range(len(video))
        ]
    )
    mean = table.mean(dim=0)
    best = int(torch.argmin(mean))
    minimum = float(mean[best])
    return SyncResult(
        distances=mean.numpy(),
        offset=vshift - best,
        sync_d=minimum,
        sync_c=float(torch.median(mean)) - minimum,
    )


def resample_indices(n_frames: int, fps: float, target: float = FPS) -> np.ndarray:
    """Indices of the source frames nearest each frame time of a ``target``-fps video."""
    count = max(1, round(n_frames * target / fps))
    return np.minimum(
        np.floor(np.arange(count) * fps / target + 0.5).astype(np.int64), n_frames - 1
    )


def face_crops(frames: np.ndarray, landmarks: np.ndarray) -> np.ndarray:
    """syncnet_python's 224×224 BGR face crops (T, 224, 224, 3) uint8 of RGB frames."""
    boxes = np.stack([face_extent(p) for p in landmarks]).astype(np.float64)
    half = medfilt(np.maximum(boxes[:, 3] - boxes[:, 1], boxes[:, 2] - boxes[:, 0]) / 2, SMOOTH)
    cy = medfilt((boxes[:, 1] + boxes[:, 3]) / 2, SMOOTH)
    cx = medfilt((boxes[:, 0] + boxes[:, 2]) / 2, SMOOTH)
    crops = []
    for frame, s, y, x in zip(frames, half, cy, cx, strict=True):
        pad = int(s * (1 + 2 * CROP_SCALE))
        image = cv2.copyMakeBorder(
            frame[..., ::-1], pad, pad, pad, pad, cv2.BORDER_CONSTANT, value=(PAD_VALUE,) * 3
        )
        y, x = y + pad, x + pad
        face = image[
            int(y - s) : int(y + s * (1 + 2 * CROP_SCALE)),
            int(x - s * (1 + CROP_SCALE)) : int(x + s * (1 + CROP_SCALE)),
        ]
        crops.append(cv2.resize(face, (CROP_SIZE, CROP_SIZE)))
    return np.stack(crops)


def mfcc_track(audio16k: np.ndarray) -> np.ndarray:
    """(13, steps) MFCCs of a mono 16 kHz float signal in [−1, 1], at the int16 scale the
    network was trained on (python_speech_features' energy term is scale-dependent)."""
    return mfcc(np.asarray(audio16k, np.float64) * INT16_SCALE, RATE).T


@torch.no_grad()
def embed_windows(
    model: SyncNet, crops: np.ndarray, mfccs: np.ndarray, n_windows: int, batch: int = 20
) -> tuple[torch.Tensor, torch.Tensor]:
    """Video and audio embeddings (n_windows, 1024) of windows ``[i, i+5)`` / ``[4i, 4i+20)``."""
    clips = torch.from_numpy(crops).float().permute(3, 0, 1, 2)  # (3, T, 224, 224)
    cc = torch.from_numpy(np.ascontiguousarray(mfccs)).float()[None]  # (1, 13, steps)
    video, audio = [], []
    for start in range(0, n_windows, batch):
        idx = range(start, min(n_windows, start + batch))
        video.append(model.forward_lip(torch.stack([clips[:, i : i + CLIP] for i in idx])))
        span = CLIP * STEPS_PER_FRAME
        windows = [cc[:, :, STEPS_PER_FRAME * i : STEPS_PER_FRAME * i + span] for i in idx]
        audio.append(model.forward_aud(torch.stack(windows)))
    return torch.cat(video), torch.cat(audio)


def sync_scores(
    model: SyncNet, frames: np.ndarray, landmarks: np.ndarray, audio16k: np.ndarray, fps: float
) -> SyncResult | None:
    """Sync scores of RGB frames (T, H, W, 3) with face landmarks (T, 68, 2) and their audio.

    ``None`` for clips under 13 frames at 25 fps: the track smoothing (a zero-padded median
    over 13 frames, as upstream, whose face tracks are at least 100 frames long) needs more.
    """
    idx = resample_indices(len(frames), fps)
    n_windows = min(len(idx), len(audio16k) // (RATE // FPS)) - CLIP
    if len(idx) < SMOOTH or n_windows < 1:
        return None
    crops = face_crops(frames[idx], np.asarray(landmarks)[idx])
    video, audio = embed_windows(model, crops, mfcc_track(audio16k), n_windows)
    return offset_search(video, audio)
