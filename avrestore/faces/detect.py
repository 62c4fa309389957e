"""dlib face detection (HOG or CNN) on a downscaled copy of large frames."""

from __future__ import annotations

import contextlib
import queue
from collections.abc import Iterator

import cv2
import dlib
import numpy as np

from avrestore.errors import InputError
from avrestore.faces.dlib_models import CNN_DETECTOR, model_file


class FaceDetector:
    """Find faces in an RGB frame with dlib's HOG (fast) or MMOD CNN (slower, more robust).

    Frames whose longest side exceeds ``max_side`` are detected on a copy shrunk to that side
    (INTER_AREA) and the boxes scaled back: the HOG cost grows with the pixel count, and a
    talking-head face stays far above its 80-pixel minimum (40 with ``upsample=1``).

    Safe to call from several threads at once: dlib's detectors keep scratch state of their
    own (two threads sharing one found other boxes), so each search borrows one of its own,
    made when none is free (as many as searches ever ran at once, each made once).
    """

    def __init__(self, kind: str = "hog", upsample: int = 1, max_side: int = 640) -> None:
        if kind not in ("hog", "cnn"):
            raise InputError(f"face detector must be 'hog' or 'cnn', got {kind!r}")
        self.kind, self.upsample, self.max_side = kind, upsample, max_side
        self._free: queue.SimpleQueue = queue.SimpleQueue()
        self._free.put(self._make())  # now: a missing model file is an error here

    def _make(self) -> object:
        """A new dlib detector of this kind."""
        if self.kind == "hog":
            return dlib.get_frontal_face_detector()
        return dlib.cnn_face_detection_model_v1(str(model_file(CNN_DETECTOR)))

    @contextlib.contextmanager
    def _dlib(self) -> Iterator:
        """A dlib detector no other search is using, for the ``with`` body."""
        try:
            detector = self._free.get_nowait()
        except queue.Empty:
            detector = self._make()
        try:
            yield detector
        finally:
            self._free.put(detector)

    def detect(self, image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Boxes (k, 4) float32 ``x0, y0, x1, y1`` in ``image`` pixels and scores (k,)."""
        h, w = image.shape[:2]
        scale = min(1.0, self.max_side / max(h, w))
        if scale < 1.0:
            size = (max(1, round(w * scale)), max(1, round(h * scale)))
            image = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
        image = np.ascontiguousarray(image)
        if self.kind == "hog":
            with self._dlib() as hog:
                rects, scores, _ = hog.run(image, self.upsample, 0.0)
        else:
            with self._dlib() as cnn:
                found = cnn(image, self.upsample)
            rects, scores = [d.rect for d in found], [d.confidence for d in found]
        boxes = np.array(
            [[r.left(), r.top(), r.right() + 1, r.bottom() + 1] for r in rects], np.float32
        ).reshape(-1, 4)
        return boxes / scale, np.asarray(scores, np.float32).reshape(-1)
