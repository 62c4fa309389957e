"""Which face to restore in which frame: tracks of crop boxes over a whole video, from boxes only.

A track is built as ``avrestore prepare`` builds its one: ``track_largest`` follows a face
through the detections, ``fill_missing`` bridges the frames where it was not found,
``square_boxes`` adds the crop margin and ``smooth_boxes`` steadies the crop. Restoration adds
two rules of its own:

- A frame is restored only where the face was detected or lies in a run of undetected frames
  no longer than ``MAX_GAP_SECONDS`` (boxes interpolated between detections, held at the
  video's ends). Longer runs, where the face has left or turned away, pass through unchanged:
  a crop at a guessed place would paste a restored background.
- With several faces, the largest is tracked first, its detections (and any overlapping its
  box) are removed, and the largest of what remains is tracked next, so tracks never overlap.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from avrestore.faces.crop import square_boxes
from avrestore.faces.track import fill_missing, smooth_boxes, track_largest

# Half a second: long enough for the detector's misses on a blinking, turning or blurred face,
# short enough that a face which has left the picture is not restored where it was.
MAX_GAP_SECONDS = 0.5
# A second face needs this many detections to be restored: fewer are likely false positives.
MIN_DETECTIONS = 5


@dataclass(frozen=True)
class Track:
    """One face through a video: square crop boxes (T, 4) in frame pixels, smoothed and filled
    in every frame, and ``active`` (T,), the frames where this face is restored."""

    boxes: np.ndarray
    active: np.ndarray

    def runs(self) -> list[tuple[int, int]]:
        """The ``(start, stop)`` frame ranges of consecutive active frames."""
        edges = np.diff(np.concatenate([[0], self.active.astype(np.int8), [0]]))
        return list(zip(np.flatnonzero(edges == 1), np.flatnonzero(edges == -1), strict=True))


def active_frames(found: np.ndarray, max_gap: int) -> np.ndarray:
    """Frames (T,) bool to restore: ``found`` ones, and those in runs of at most ``max_gap``
    frames without a detection (skipped frames between detections count as not found)."""
    found = np.asarray(found, bool)
    active = found.copy()
    edges = np.diff(np.concatenate([[1], found.astype(np.int8), [1]]))
    for start, stop in zip(np.flatnonzero(edges == -1), np.flatnonzero(edges == 1), strict=True):
        active[start:stop] = stop - start <= max_gap
    return active


def _overlaps(boxes: np.ndarray, box: np.ndarray) -> np.ndarray:
    """Whether each of ``boxes`` (k, 4) shares any area with ``box`` (4,)."""
    w = np.minimum(boxes[:, 2], box[2]) - np.maximum(boxes[:, 0], box[0])
    h = np.minimum(boxes[:, 3], box[3]) - np.maximum(boxes[:, 1], box[1])
    return (w > 0) & (h > 0)


def follow_faces(
    detections: Sequence[np.ndarray | None], several: bool = False
) -> list[np.ndarray]:
    """Face boxes (T, 4) per track, NaN where the face was not seen, largest face first.

    Without ``several`` only the largest face's track. With it, each further track is the
    largest face among the detections not overlapping an earlier track's (filled) box, kept
    if it was seen at least ``MIN_DETECTIONS`` times.
    """
    remaining = [
        None if d is None else np.asarray(d, np.float32).reshape(-1, 4) for d in detections
    ]
    tracks: list[np.ndarray] = []
    while any(d is not None and len(d) for d in remaining):
        boxes = track_largest(remaining)
        seen = int((~np.isnan(boxes).any(axis=1)).sum())
        if not tracks or seen >= MIN_DETECTIONS:
            tracks.append(boxes)
        if not several:
            break
        filled = fill_missing(boxes)
        remaining = [
            None if d is None else d[~_overlaps(d, filled[t])] for t, d in enumerate(remaining)
        ]
    return tracks


def plan_tracks(
    detections: Sequence[np.ndarray | None],
    fps: float,
    smooth_sigma: float,
    several: bool = False,
) -> list[Track]:
    """The tracks to restore (largest face first; none if no face was found)."""
    max_gap = round(MAX_GAP_SECONDS * fps)
    return [
        Track(
            boxes=smooth_boxes(square_boxes(fill_missing(boxes)), smooth_sigma),
            active=active_frames(~np.isnan(boxes).any(axis=1), max_gap),
        )
        for boxes in follow_faces(detections, several)
    ]
