"""Square face crops: the margin convention, and cutting a box out of a frame at a fixed size.

Convention (shared by tracking, landmarks and metrics): a crop is the square centred on the
detector's face box with side ``CROP_MARGIN`` times the box's longer side. The face box inside
a crop of side ``S`` is therefore the centred square of side ``S / CROP_MARGIN``.
"""

from __future__ import annotations

import cv2
import numpy as np

# dlib's box spans brows to chin; 1.6x adds the forehead, hair line, ears and some neck, as in
# the VoxCeleb-style crops talking-head models are trained on.
CROP_MARGIN = 1.6


def square_boxes(face_boxes: np.ndarray, margin: float = CROP_MARGIN) -> np.ndarray:
    """Crop boxes (..., 4) for face boxes (..., 4): same centre, side ``margin`` x longer side."""
    b = np.asarray(face_boxes, np.float32)
    centre = (b[..., :2] + b[..., 2:]) / 2
    half = margin * np.maximum(b[..., 2] - b[..., 0], b[..., 3] - b[..., 1])[..., None] / 2
    return np.concatenate([centre - half, centre + half], axis=-1).astype(np.float32)


def face_box_in_crop(width: int, height: int, margin: float = CROP_MARGIN) -> np.ndarray:
    """The face box (4,) that a centred crop of this size implies (the inverse of the margin)."""
    side = min(width, height) / margin
    cx, cy = width / 2, height / 2
    return np.array([cx - side / 2, cy - side / 2, cx + side / 2, cy + side / 2], np.float32)


def crop_square(image: np.ndarray, box: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
    """Cut ``box`` out of ``image`` resized to ``size`` x ``size``; also the box actually used.

    The box is snapped to whole pixels (returned, float32, so that crop and source coordinates
    map exactly); parts outside the frame are filled by replicating the edge pixels, which,
    unlike a reflection, cannot create a mirrored second face. Shrinking uses INTER_AREA
    (no aliasing), enlarging INTER_CUBIC.
    """
    h, w = image.shape[:2]
    x0, y0 = round(float(box[0])), round(float(box[1]))
    side = max(1, round(float(box[2] - box[0])))
    x1, y1 = x0 + side, y0 + side
    inside = image[max(y0, 0) : min(y1, h), max(x0, 0) : min(x1, w)]
    if inside.size == 0:
        raise ValueError(f"crop box {box} lies outside the {w}x{h} frame")
    pads = (max(0, -y0), max(0, y1 - h), max(0, -x0), max(0, x1 - w))
    if any(pads):
        inside = cv2.copyMakeBorder(inside, *pads, borderType=cv2.BORDER_REPLICATE)
    if side != size:
        interp = cv2.INTER_AREA if side > size else cv2.INTER_CUBIC
        inside = cv2.resize(inside, (size, size), interpolation=interp)
    return np.ascontiguousarray(inside), np.array([x0, y0, x1, y1], np.float32)
