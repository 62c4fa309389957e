"""Search a stream of frames for faces on every k-th frame only, keeping just the boxes."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from avrestore.faces.detect import FaceDetector


def scan_faces(
    frames: Iterable[np.ndarray], detector: FaceDetector, every: int
) -> list[np.ndarray | None]:
    """Per frame, the detected boxes (k, 4), or None for frames that were skipped.

    Only frames ``0, every, 2 * every, ...`` are searched: detection is the dominant cost,
    and the tracker (``track_largest``) and the box smoothing bridge the skipped frames.
    No pixels are kept, so memory grows with the number of frames only by their boxes.
    """
    detections: list[np.ndarray | None] = []
    for t, image in enumerate(frames):
        detections.append(None if t % every else detector.detect(image)[0])
    return detections
