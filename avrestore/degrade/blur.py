"""Gaussian blur with the papers' odd kernel sizes (15 to 25)."""

from __future__ import annotations

import cv2
import numpy as np


def gaussian_sigma(ksize: int) -> float:
    """The standard deviation a kernel of ``ksize`` taps gets: OpenCV's rule
    ``0.3 * ((ksize - 1) / 2 - 1) + 0.8`` (2.6 for 15, 3.5 for 21, 4.1 for 25).

    The papers state only the kernel size; this is the sigma ``cv2.GaussianBlur`` derives
    from it when asked for sigma 0, written out so that the level is fully specified.
    """
    return 0.3 * ((ksize - 1) * 0.5 - 1) + 0.8


def blur(frames: np.ndarray, ksize: int) -> np.ndarray:
    """Blur each frame of (T, H, W, 3) uint8 with a ``ksize`` x ``ksize`` Gaussian kernel."""
    sigma = gaussian_sigma(ksize)
    return np.stack([cv2.GaussianBlur(f, (ksize, ksize), sigma) for f in frames])
