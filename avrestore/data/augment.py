"""Geometric augmentation of frame windows and their landmarks: crop and horizontal flip.

Landmarks (..., 68, 2) are ``x, y`` in pixels and move with the pixels, so the teacher
landmarks stay valid supervision for the augmented patch.
"""

from __future__ import annotations

import numpy as np

from avrestore.errors import InputError
from avrestore.faces.landmarks import FLIP_PERMUTATION


def crop_origin(
    size: tuple[int, int], patch: int, rng: np.random.Generator | None, grid: int = 1
) -> tuple[int, int]:
    """Top-left ``(y, x)`` of a ``patch``² crop of frames of ``size = (H, W)``: drawn from
    ``rng``, or centred (rounded down) when it is None; both multiples of ``grid`` (e.g. 4,
    to keep a codec's 4x4 transform blocks whole)."""
    h, w = size
    if not 0 < patch <= min(h, w):
        raise InputError(f"patch size must be in 1..{min(h, w)} for {w}x{h} frames, got {patch}")
    if rng is None:
        return (h - patch) // 2 // grid * grid, (w - patch) // 2 // grid * grid
    y = int(rng.integers((h - patch) // grid + 1)) * grid
    return y, int(rng.integers((w - patch) // grid + 1)) * grid


def crop_frames(frames: np.ndarray, origin: tuple[int, int], patch: int) -> np.ndarray:
    """The ``patch``² region at ``origin`` of frames (..., H, W, 3)."""
    y, x = origin
    return frames[..., y : y + patch, x : x + patch, :]


def crop_landmarks(landmarks: np.ndarray, origin: tuple[int, int]) -> np.ndarray:
    """Landmarks in the pixel coordinates of a crop whose top-left is ``origin = (y, x)``."""
    y, x = origin
    return landmarks - np.array([x, y], landmarks.dtype)


def flip_frames(frames: np.ndarray) -> np.ndarray:
    """Frames (..., H, W, 3) mirrored left-right."""
    return frames[..., ::-1, :]


def flip_landmarks(landmarks: np.ndarray, width: int) -> np.ndarray:
    """Landmarks of the frames mirrored left-right: pixel column ``i`` goes to ``width-1-i``
    and points are renumbered (``FLIP_PERMUTATION``) so that each index keeps its meaning,
    e.g. 36 stays the outer corner of the eye on the image's left."""
    mirrored = landmarks[..., FLIP_PERMUTATION, :].copy()
    mirrored[..., 0] = (width - 1) - mirrored[..., 0]
    return mirrored
