"""Input | restored side by side, captioned: a PNG of the middle frame, or a whole video."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import numpy as np

from avrestore.media.audio import Audio
from avrestore.media.files import atomic_path
from avrestore.media.images import side_by_side, write_png
from avrestore.media.video import VideoWriter

# (frame index, input frame, restored frame) -> None
AddPair = Callable[[int, np.ndarray, np.ndarray], None]


@contextlib.contextmanager
def comparison(
    path: Path,
    fps: float,
    frames: int,
    captions: Sequence[str],
    audio: Audio | None = None,
    crf: float = 16,
) -> Iterator[AddPair]:
    """Yield a function taking every frame pair in order; on success ``path`` holds a PNG of
    the middle pair (``.png``) or a video of all pairs with ``audio`` (any video suffix,
    H.264 at ``crf``)."""
    labels = [[c] for c in captions]
    if path.suffix.lower() != ".png":
        with atomic_path(path) as tmp, VideoWriter(tmp, fps, crf=crf, audio=audio) as writer:
            yield lambda _t, before, after: writer.write(side_by_side([before, after], labels))
        return
    middle: list[np.ndarray] = []

    def keep_middle(t: int, before: np.ndarray, after: np.ndarray) -> None:
        if t == frames // 2:
            middle.extend((before.copy(), after.copy()))

    yield keep_middle
    write_png(path, side_by_side(middle, labels))
