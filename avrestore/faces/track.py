"""Follow one face through a clip: pick the largest, never jump to another, fill gaps, smooth.

Works on per-frame detections only (no pixels), so it is cheap and testable on synthetic boxes.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy.ndimage import gaussian_filter1d


def _centres_sides(boxes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    centres = (boxes[..., :2] + boxes[..., 2:]) / 2
    sides = np.maximum(boxes[..., 2] - boxes[..., 0], boxes[..., 3] - boxes[..., 1])
    return centres, sides


def _match(last: np.ndarray, candidates: np.ndarray, max_shift: float, max_scale: float) -> int:
    """Index of the candidate continuing ``last``, or -1: its centre within ``max_shift`` x
    the last side, its size within a factor ``max_scale``; the nearest such centre wins."""
    if len(candidates) == 0:
        return -1
    c0, s0 = _centres_sides(last)
    c, s = _centres_sides(candidates)
    dist = np.linalg.norm(c - c0, axis=-1)
    ok = (dist <= max_shift * s0) & (s <= max_scale * s0) & (s >= s0 / max_scale)
    if not ok.any():
        return -1
    return int(np.argmin(np.where(ok, dist, np.inf)))


def track_largest(
    detections: Sequence[np.ndarray | None], max_shift: float = 0.5, max_scale: float = 1.5
) -> np.ndarray:
    """The track of the clip's largest face: boxes (T, 4) float32, NaN where it was not seen.

    ``detections[t]`` holds frame ``t``'s boxes (k, 4), or None if the frame was not searched.
    The track starts at the largest box of the whole clip and runs forwards and backwards
    from there, each frame taking the detection that continues the last matched box; any
    other detection (a second face, a false positive) is ignored, so the track never jumps.
    """
    detections = [
        None if b is None else np.asarray(b, np.float32).reshape(-1, 4) for b in detections
    ]
    out = np.full((len(detections), 4), np.nan, np.float32)
    best, seed = -1.0, None
    for t, boxes in enumerate(detections):
        if boxes is None or len(boxes) == 0:
            continue
        _, s = _centres_sides(boxes)
        i = int(np.argmax(s))
        if s[i] > best:
            best, seed = float(s[i]), (t, i)
    if seed is None:
        return out
    t0, i0 = seed
    out[t0] = detections[t0][i0]
    for order in (range(t0 + 1, len(detections)), range(t0 - 1, -1, -1)):
        last = out[t0]
        for t in order:
            boxes = detections[t]
            if boxes is None:
                continue
            j = _match(last, boxes, max_shift, max_scale)
            if j >= 0:
                out[t] = last = boxes[j]
    return out


def fill_missing(boxes: np.ndarray) -> np.ndarray:
    """Replace NaN rows by linear interpolation between the nearest found frames (held at the
    ends). Needs at least one found frame."""
    boxes = np.asarray(boxes, np.float32)
    found = ~np.isnan(boxes).any(axis=1)
    if not found.any():
        raise ValueError("no frame has a box to fill from")
    t = np.arange(len(boxes))
    return np.stack([np.interp(t, t[found], boxes[found, k]) for k in range(4)], axis=1).astype(
        np.float32
    )


def smooth_boxes(boxes: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian-smooth each coordinate over time (``sigma`` in frames) so crops do not jitter.

    Smoothing is linear, so square boxes stay square. ``sigma=0`` returns the boxes unchanged.
    """
    boxes = np.asarray(boxes, np.float32)
    if sigma <= 0 or len(boxes) < 2:
        return boxes
    return gaussian_filter1d(boxes, sigma, axis=0, mode="nearest").astype(np.float32)
