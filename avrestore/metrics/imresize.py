"""MATLAB's ``imresize`` (bicubic, anti-aliased when shrinking) for 2-D float images.

NIQE's second scale is defined with it. ``cv2.resize`` is no substitute: it does not
anti-alias, and on a 512×512 HDTF frame swapping it in moved NIQE from 4.59 to 5.71 (cubic)
or 4.85 (linear, what early BasicSR used).
"""

from __future__ import annotations

import math

import numpy as np


def _cubic(x: np.ndarray) -> np.ndarray:
    """Keys' cubic convolution kernel with a = −0.5, MATLAB's ``cubic``."""
    ax = np.abs(x)
    near = (1.5 * ax**3 - 2.5 * ax**2 + 1) * (ax <= 1)
    far = (-0.5 * ax**3 + 2.5 * ax**2 - 4 * ax + 2) * ((ax > 1) & (ax <= 2))
    return near + far


def resize_matrix(in_len: int, out_len: int, scale: float) -> np.ndarray:
    """The (out_len, in_len) matrix that resamples one axis as MATLAB does.

    Output pixel k (1-based) sits at input coordinate ``k / scale + (1 − 1/scale) / 2``; when
    shrinking, the kernel is stretched by ``1 / scale`` (anti-aliasing). Taps beyond the edges
    are mirrored with the edge pixel repeated (MATLAB's symmetric padding).
    """
    width = 4.0 / scale if scale < 1 else 4.0
    u = np.arange(1, out_len + 1) / scale + 0.5 * (1 - 1 / scale)
    left = np.floor(u - width / 2)
    taps = left[:, None] + np.arange(math.ceil(width) + 2)[None, :]
    dist = u[:, None] - taps
    weights = scale * _cubic(scale * dist) if scale < 1 else _cubic(dist)
    weights /= weights.sum(axis=1, keepdims=True)
    mirror = np.concatenate([np.arange(in_len), np.arange(in_len)[::-1]])
    cols = mirror[(taps.astype(np.int64) - 1) % (2 * in_len)]
    matrix = np.zeros((out_len, in_len))
    np.add.at(matrix, (np.repeat(np.arange(out_len), taps.shape[1]), cols.ravel()), weights.ravel())
    return matrix


def imresize(image: np.ndarray, scale: float) -> np.ndarray:
    """Resize a 2-D image by ``scale`` (output side ``ceil(side · scale)``), float64, unrounded."""
    h, w = image.shape
    rows = resize_matrix(h, math.ceil(h * scale), scale)
    cols = resize_matrix(w, math.ceil(w * scale), scale)
    return rows @ np.asarray(image, dtype=np.float64) @ cols.T
