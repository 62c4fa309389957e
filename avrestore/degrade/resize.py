"""Bicubic down- and up-scaling for the low-resolution degradation.

Downscaling uses ``cv2.INTER_AREA``: for an integer factor it averages each s x s block,
which low-passes before subsampling the way MATLAB's antialiased ``imresize(..., 'bicubic')``
does (the papers' operator). ``cv2.INTER_CUBIC`` alone would read only 4 x 4 taps per output
pixel and alias badly at x4 and x8. Upscaling back to the model's input size is bicubic
(``cv2.INTER_CUBIC``), as in the papers.
"""

from __future__ import annotations

import cv2
import numpy as np


def downscaled_size(height: int, width: int, factor: int) -> tuple[int, int]:
    """The (height, width) a frame has after downscaling by ``factor``, at least 1 x 1."""
    return max(1, round(height / factor)), max(1, round(width / factor))


def downscale(frames: np.ndarray, factor: int) -> np.ndarray:
    """Shrink each frame of (T, H, W, 3) uint8 by ``factor`` with area averaging."""
    h, w = downscaled_size(*frames.shape[1:3], factor)
    return np.stack([cv2.resize(f, (w, h), interpolation=cv2.INTER_AREA) for f in frames])


def upscale(frames: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Resize each frame of (T, h, w, 3) uint8 to ``size`` = (H, W) with bicubic interpolation."""
    h, w = size
    return np.stack([cv2.resize(f, (w, h), interpolation=cv2.INTER_CUBIC) for f in frames])
