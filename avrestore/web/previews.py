"""The page's before/after view: a few input frames with the face box drawn, each beside the
same frame restored, written as PNG (lossless, so the comparison shows the restoration only)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from avrestore.faces.detect import FaceDetector
from avrestore.faces.track import track_largest
from avrestore.media.images import write_png
from avrestore.media.video import iter_frames
from avrestore.restore.stream import TRAINING_CLIPS, upscaled

POSITIONS = 3  # frames shown, evenly spread over the video
_BOX = (255, 210, 0)  # the face box: amber, unlike any skin or background tone


@dataclass(frozen=True)
class Pair:
    """One frame of the view: its index and the file names of the input and restored PNGs."""

    frame: int
    before: str
    after: str


def _frames(path: Path, fps: float | None = None) -> Iterator[np.ndarray]:
    for chunk in iter_frames(path, fps=fps):
        yield from chunk.frames


def _with_box(frame: np.ndarray, box: np.ndarray) -> np.ndarray:
    """A copy of ``frame`` with ``box`` (x0, y0, x1, y1; NaN when no face) outlined."""
    out = frame.copy()
    if not np.isnan(box).any():
        width = max(2, round(max(frame.shape[:2]) / 300))
        x0, y0, x1, y1 = (round(float(v)) for v in box)
        cv2.rectangle(out, (x0, y0), (x1 - 1, y1 - 1), _BOX, width)
    return out


def write_pairs(
    source: Path, restored: Path, frames: int, fps: float, scale: int, folder: Path
) -> list[Pair]:
    """Write the view of ``restored`` (``frames`` frames decoded from ``source`` at ``fps``,
    upscaled by ``scale``, as restoring did) into ``folder``."""
    picks = sorted({frames * (k + 1) // (POSITIONS + 1) for k in range(POSITIONS)})
    befores, afters = [], []
    pairs = zip(_frames(source, fps), _frames(restored), strict=True)
    for t, (before, after) in enumerate(pairs):
        if t in picks:
            befores.append(upscaled(before[None], scale)[0])
            afters.append(after)
        if t == picks[-1]:
            break
    # The largest face of the frames shown, followed across them, as restoring chose it.
    detector = FaceDetector(TRAINING_CLIPS.detector)
    boxes = track_largest([detector.detect(frame)[0] for frame in befores])
    written = []
    for t, before, after, box in zip(picks, befores, afters, boxes, strict=True):
        pair = Pair(t, f"before-{t}.png", f"after-{t}.png")
        write_png(folder / pair.before, _with_box(before, box))
        write_png(folder / pair.after, after)
        written.append(pair)
    return written
