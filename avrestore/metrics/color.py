"""The luma channel the super-resolution literature reports on: MATLAB's ``rgb2ycbcr`` Y."""

from __future__ import annotations

import numpy as np

# ITU-R BT.601 studio range, as MATLAB: Y = 16 + 65.481 R + 128.553 G + 24.966 B (R, G, B in
# [0, 1], Y in [16, 235]). OpenCV's YCrCb is the full-range JPEG variant and differs.
Y_WEIGHTS = np.array([65.481, 128.553, 24.966])
Y_OFFSET = 16.0


def y_channel(rgb: np.ndarray) -> np.ndarray:
    """Y (…, H, W, 1) in [0, 1] (that is, [16, 235] / 255) of RGB (…, H, W, 3) in [0, 1]."""
    return ((np.asarray(rgb, np.float64) @ Y_WEIGHTS + Y_OFFSET) / 255.0)[..., None]
