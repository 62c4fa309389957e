"""dlib's 68-point landmarks (iBUG 300-W order) on frames or aligned face crops."""

from __future__ import annotations

import dlib
import numpy as np

from avrestore.faces.crop import face_box_in_crop
from avrestore.faces.detect import FaceDetector
from avrestore.faces.dlib_models import SHAPE_68, model_file

MOUTH = slice(48, 68)


def _flip_permutation() -> np.ndarray:
    """Index ``i`` of the flipped face takes point ``FLIP_PERMUTATION[i]`` of the original."""
    mirrored_runs = [
        (range(0, 17), range(16, -1, -1)),  # jaw
        (range(17, 27), range(26, 16, -1)),  # brows
        (range(27, 31), range(27, 31)),  # nose bridge (on the axis)
        (range(31, 36), range(35, 30, -1)),  # nostrils
        ([36, 37, 38, 39, 40, 41], [45, 44, 43, 42, 47, 46]),  # right eye <- left eye
        ([42, 43, 44, 45, 46, 47], [39, 38, 37, 36, 41, 40]),  # left eye <- right eye
        (range(48, 55), range(54, 47, -1)),  # upper outer lip
        (range(55, 60), range(59, 54, -1)),  # lower outer lip
        (range(60, 65), range(64, 59, -1)),  # upper inner lip
        (range(65, 68), range(67, 64, -1)),  # lower inner lip
    ]
    perm = np.empty(68, np.int64)
    for dst, src in mirrored_runs:
        perm[list(dst)] = list(src)
    return perm


# Flip an image horizontally and its landmarks become ``pts[FLIP_PERMUTATION]`` with
# ``x -> width - x``: left and right points swap names.
FLIP_PERMUTATION = _flip_permutation()


def to_rectangle(box: np.ndarray) -> dlib.rectangle:
    """A dlib rectangle (inclusive corners) for a float box ``x0, y0, x1, y1`` (exclusive)."""
    x0, y0, x1, y1 = (round(float(v)) for v in box)
    return dlib.rectangle(x0, y0, max(x0, x1 - 1), max(y0, y1 - 1))


class LandmarkPredictor:
    """68 landmarks ``(x, y)`` in image pixels from dlib's shape predictor."""

    def __init__(self, detector: FaceDetector | None = None) -> None:
        self._shape = dlib.shape_predictor(str(model_file(SHAPE_68)))
        self._detector = detector

    def shape(self, image: np.ndarray, box: np.ndarray | None = None) -> dlib.full_object_detection:
        """dlib's raw result for ``image`` (H, W, 3) uint8 RGB; ``box`` as in ``predict``."""
        if box is None:
            box = self._find_face(image)
        return self._shape(np.ascontiguousarray(image), to_rectangle(box))

    def predict(self, image: np.ndarray, box: np.ndarray | None = None) -> np.ndarray:
        """Landmarks (68, 2) float32 of the face in ``box`` (x0, y0, x1, y1).

        Without ``box`` the image is taken as an aligned face crop: the largest detected face
        is used, or, when none is found (a blurred or degraded crop), the centred face box the
        crop convention implies (``face_box_in_crop``).
        """
        s = self.shape(image, box)
        return np.array([(p.x, p.y) for p in s.parts()], np.float32)

    def _find_face(self, image: np.ndarray) -> np.ndarray:
        if self._detector is None:
            self._detector = FaceDetector("hog", upsample=1)
        boxes, _ = self._detector.detect(image)
        if len(boxes):
            areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
            return boxes[int(np.argmax(areas))]
        return face_box_in_crop(image.shape[1], image.shape[0])
