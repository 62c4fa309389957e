"""Mouth-region metrics: PSNR inside the mouth box, and the landmark distance LMD.

Mouth box: the extent of the 20 mouth landmarks (dlib points 48–67) of the HQ frame, widened
on every side by 10 % of the mouth's width, rounded outwards to whole pixels and clipped to
the image — lips, their corners and a little skin, the region audio informs.

LMD (Chen et al. 2018): the mean Euclidean distance, in pixels of the frames given, between
the 20 mouth landmarks of the restored and of the HQ frame, averaged over frames. Both sets
are fitted by dlib's shape predictor inside the same box — the extent of the HQ frame's 68
landmarks — so identical frames score exactly 0 and the face detector, whose box would
otherwise differ between a degraded and a clean frame, never runs on the restored video.
"""

from __future__ import annotations

import math

import numpy as np

from avrestore.faces.landmarks import MOUTH, LandmarkPredictor
from avrestore.quality import psnr

MOUTH_MARGIN = 0.10


def mouth_box(landmarks: np.ndarray, height: int, width: int) -> tuple[int, int, int, int]:
    """Integer box ``x0, y0, x1, y1`` (exclusive ends) around the mouth of 68 landmarks."""
    mouth = np.asarray(landmarks, np.float64)[MOUTH]
    (x0, y0), (x1, y1) = mouth.min(0), mouth.max(0)
    m = MOUTH_MARGIN * (x1 - x0)
    box = (math.floor(x0 - m), math.floor(y0 - m), math.ceil(x1 + m) + 1, math.ceil(y1 + m) + 1)
    return (
        min(max(box[0], 0), width - 1),
        min(max(box[1], 0), height - 1),
        min(max(box[2], 1), width),
        min(max(box[3], 1), height),
    )


def mouth_psnr(restored: np.ndarray, hq: np.ndarray, hq_landmarks: np.ndarray) -> float:
    """Mean over frames of the PSNR inside each HQ frame's mouth box; (T, H, W, 3) videos."""
    h, w = hq.shape[1:3]
    values = []
    for r, q, pts in zip(restored, hq, hq_landmarks, strict=True):
        x0, y0, x1, y1 = mouth_box(pts, h, w)
        values.append(psnr(r[y0:y1, x0:x1], q[y0:y1, x0:x1]))
    return float(np.mean(values))


def face_extent(landmarks: np.ndarray) -> np.ndarray:
    """The box ``x0, y0, x1, y1`` (4,) spanned by a face's 68 landmarks."""
    pts = np.asarray(landmarks, np.float32)
    return np.concatenate([pts.min(0), pts.max(0)])


def refit_landmarks(
    predictor: LandmarkPredictor, frames: np.ndarray, hq_landmarks: np.ndarray
) -> np.ndarray:
    """Landmarks (T, 68, 2) of ``frames`` fitted inside the extent of each HQ frame's landmarks."""
    return np.stack(
        [predictor.predict(f, face_extent(p)) for f, p in zip(frames, hq_landmarks, strict=True)]
    )


def lmd(restored_landmarks: np.ndarray, hq_landmarks: np.ndarray) -> float:
    """Mean distance (pixels) between the mouth points of two (T, 68, 2) landmark tracks."""
    diff = np.asarray(restored_landmarks)[:, MOUTH] - np.asarray(hq_landmarks)[:, MOUTH]
    return float(np.linalg.norm(diff, axis=-1).mean())
