"""Paste a restored face crop back into its frame through a feathered mask, so no seam shows.

What is pasted is the model's change, ``restored - crop``, resized to the box and added to the
frame, rather than the restored crop itself. Where the crop was shrunk from a large face the
frame keeps the detail finer than the crop could hold (a model that changes nothing leaves
the frame as it was, at any face size); where it was enlarged the two are the same up to
resampling.

The mask is 1 over the middle of the crop and falls to 0 along its border with a raised
cosine over the outer ``FEATHER`` of its side. The face itself (the inner ``1 / CROP_MARGIN``
= 62 % of the crop) lies wholly in the part that is 1; pixels where the mask is 0, and all
outside the crop, keep the frame's values bit for bit.
"""

from __future__ import annotations

from functools import lru_cache

import cv2
import numpy as np

FEATHER = 0.125


@lru_cache(maxsize=8)
def feather_mask(side: int, feather: float = FEATHER) -> np.ndarray:
    """(side, side) float32 weights: 0 on the border pixels, rising as a raised cosine over
    ``feather * side`` pixels to 1 inside."""
    distance = np.minimum(np.arange(side), np.arange(side)[::-1]).astype(np.float32)
    ramp = max(feather * side, 1.0)
    edge = 0.5 - 0.5 * np.cos(np.pi * np.clip(distance / ramp, 0.0, 1.0))
    mask = np.outer(edge, edge).astype(np.float32)
    mask.flags.writeable = False  # shared by every call through the cache
    return mask


def paste_face(frame: np.ndarray, restored: np.ndarray, crop: np.ndarray, box: np.ndarray) -> None:
    """Add ``restored - crop`` (S, S, 3) uint8, resized to ``box`` and feathered, to ``frame``
    (H, W, 3) uint8 in place; ``box`` (x0, y0, x1, y1) is the one ``crop_square`` cut ``crop``
    from (whole pixels; it may reach outside the frame)."""
    x0, y0, x1, y1 = (int(v) for v in box)
    h, w = frame.shape[:2]
    fx0, fy0, fx1, fy1 = max(x0, 0), max(y0, 0), min(x1, w), min(y1, h)
    if fx0 >= fx1 or fy0 >= fy1:
        return
    side = x1 - x0
    change = restored.astype(np.float32) - crop.astype(np.float32)
    if len(change) != side:
        interp = cv2.INTER_AREA if len(change) > side else cv2.INTER_CUBIC
        change = cv2.resize(change, (side, side), interpolation=interp)
    inside = (slice(fy0 - y0, fy1 - y0), slice(fx0 - x0, fx1 - x0))
    weighted = feather_mask(side)[inside][..., None] * change[inside]
    region = frame[fy0:fy1, fx0:fx1]
    frame[fy0:fy1, fx0:fx1] = np.clip(np.rint(region + weighted), 0, 255).astype(np.uint8)
