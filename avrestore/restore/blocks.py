"""Restore long runs of frames block by block as they stream in, with the same result as
restoring each run whole with ``restore_sequence``.

A run is cut into blocks of ``length`` output frames, a multiple of the model's
``frames_out`` so that every block's windows fall where the whole run's do. Each block reads
the ``context`` frames its first window needs before it and its last window needs after it,
as context only (``restore_sequence``'s ``context``): no window is run twice, so short blocks
(a low, steady latency) cost no more model time than long ones. The run's own ends are
reflected as ``restore_sequence`` reflects them. Only one block's frames are held.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

import numpy as np

# (index of the first frame, frames (n, ...), context (before, after)) -> the restored frames
# (n - before - after, ...) between the context frames
RestoreFn = Callable[[int, np.ndarray, tuple[int, int]], np.ndarray]


@dataclass(frozen=True)
class Block:
    """Restores frames ``start .. stop`` (exclusive) from frames ``first .. last`` it reads."""

    start: int
    stop: int
    first: int
    last: int


def plan_blocks(
    runs: Iterable[tuple[int, int]], frames_in: int, frames_out: int, length: int
) -> list[Block]:
    """Blocks covering each ``(start, stop)`` run, about ``length`` frames each."""
    context = (frames_in - frames_out) // 2
    size = max(1, length // frames_out) * frames_out
    blocks = []
    for run_start, run_stop in runs:
        start = run_start
        while start < run_stop:
            stop = min(start + size, run_stop)
            if run_stop - stop <= context:  # the rest is read as context anyway: finish it
                stop = run_stop
            first, last = max(run_start, start - context), min(run_stop, stop + context)
            blocks.append(Block(start, stop, first, last))
            start = stop
    return blocks


class BlockRestorer:
    """Collects frames as they arrive and restores each block once all it reads is in."""

    def __init__(self, blocks: list[Block], restore: RestoreFn) -> None:
        self._blocks = list(blocks)
        self._next = 0
        self._restore = restore
        self._frames: dict[int, np.ndarray] = {}

    def add(self, t: int, frame: np.ndarray) -> None:
        """Frame ``t`` of the video (call only for frames inside some block)."""
        self._frames[t] = frame

    def ready(self, received: int) -> Iterator[tuple[int, np.ndarray]]:
        """``(t, restored frame)`` of every block whose frames, all below ``received``, are in."""
        while self._next < len(self._blocks) and self._blocks[self._next].last <= received:
            b = self._blocks[self._next]
            self._next += 1
            frames = np.stack([self._frames[t] for t in range(b.first, b.last)])
            restored = self._restore(b.first, frames, (b.start - b.first, b.last - b.stop))
            keep = self._blocks[self._next].first if self._next < len(self._blocks) else b.last
            for t in [t for t in self._frames if t < keep]:
                del self._frames[t]
            for t in range(b.start, b.stop):
                yield t, restored[t - b.start]
