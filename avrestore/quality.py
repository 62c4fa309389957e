"""PSNR, the single definition every module uses (media checks, the demo, the metrics)."""

from __future__ import annotations

import math

import numpy as np


def _peak(a: np.ndarray) -> float:
    if a.dtype == np.uint8:
        return 255.0
    if np.issubdtype(a.dtype, np.floating):
        return 1.0  # float images live in [0, 1]
    raise ValueError(f"PSNR takes uint8 or float arrays, got {a.dtype}")


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    """Peak signal-to-noise ratio in dB over all elements (float64; peak 255 for uint8, else 1).

    uint8 input with peak 255 gives the same value as RGB scaled to [0, 1] with peak 1.
    Identical inputs give ``inf``.
    """
    if a.shape != b.shape or a.dtype != b.dtype:
        raise ValueError(f"PSNR of mismatched arrays: {a.dtype} {a.shape} vs {b.dtype} {b.shape}")
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return math.inf if mse == 0 else 10.0 * math.log10(_peak(a) ** 2 / mse)


def video_psnr(a: np.ndarray, b: np.ndarray) -> float:
    """Mean over frames of the per-frame PSNR of two (T, H, W, C) videos, the papers' average."""
    if a.shape != b.shape or a.ndim != 4:
        raise ValueError(f"video PSNR takes two (T, H, W, C) arrays, got {a.shape} and {b.shape}")
    return float(np.mean([psnr(x, y) for x, y in zip(a, b, strict=True)]))
