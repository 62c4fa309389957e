"""Identity embeddings from dlib's face-recognition ResNet (128-d, 0.6 = same-person threshold)."""

from __future__ import annotations

import dlib
import numpy as np

from avrestore.faces.dlib_models import FACE_RECOGNITION, model_file
from avrestore.faces.landmarks import LandmarkPredictor, to_rectangle


class FaceEmbedder:
    """128-d float32 face descriptors; Euclidean distance below about 0.6 means same person."""

    def __init__(self, landmarks: LandmarkPredictor | None = None) -> None:
        self._net = dlib.face_recognition_model_v1(str(model_file(FACE_RECOGNITION)))
        self._landmarks = landmarks or LandmarkPredictor()

    def embed(
        self,
        image: np.ndarray,
        landmarks: np.ndarray | None = None,
        box: np.ndarray | None = None,
    ) -> np.ndarray:
        """Descriptor (128,) of the face in ``image`` (H, W, 3) uint8 RGB.

        The network aligns the face from 68 landmarks: pass them (68, 2) if known; else they
        are predicted inside ``box``, or, with neither, as ``LandmarkPredictor.predict`` does
        on an aligned crop.
        """
        image = np.ascontiguousarray(image)
        if landmarks is None:
            shape = self._landmarks.shape(image, box)
        else:
            pts = np.asarray(landmarks, np.float32).reshape(68, 2)
            rect = to_rectangle(np.concatenate([pts.min(0), pts.max(0)]))
            shape = dlib.full_object_detection(
                rect, [dlib.point(round(x), round(y)) for x, y in pts]
            )
        return np.asarray(self._net.compute_face_descriptor(image, shape, 0), np.float32)
