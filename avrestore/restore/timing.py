"""Where a restore's time goes: wall and CPU seconds per stage, and each frame's latency from
the moment it is decoded (in pass 2) to the moment it is encoded.

The CPU seconds are those of the thread that ran the stage (``time.thread_time``): on a
machine whose cores other jobs also use they stay near what a quiet machine's wall clock
would read, where the wall seconds grow with the load; the work of a library's own worker
threads (torch or ONNX Runtime on more than one thread, x264's) is not in them.

Stages (``STAGES``): ``setup`` (checking arguments, loading the model, landmarker and ONNX
session), ``decode`` (both passes, with the upscaling of ``sr``), ``detect`` (face detection and
tracking, pass 1), ``audio`` (decoding the audio and its MFCC windows), ``landmarks``, ``model``,
``paste`` (cutting the face crops and pasting the restored ones back) and ``encode`` (H.264 and
AAC, the comparison output, closing the file).
"""

from __future__ import annotations

import contextlib
import math
import threading
import time
from collections.abc import Iterable, Iterator
from typing import TypeVar

T = TypeVar("T")

_END = object()  # what ``timed`` gets from an exhausted iterator

STAGES = ("setup", "decode", "detect", "audio", "landmarks", "model", "paste", "encode")


def _now() -> tuple[float, float]:
    """Wall and this thread's CPU seconds."""
    return time.perf_counter(), time.thread_time()


class StageClock:
    """Wall and CPU seconds per stage, and the decode-to-encode latency of every frame.

    Within one thread a stage entered inside another pauses the outer one, so no second is
    counted twice and the stages of a serial run sum to its wall time (less what no stage
    covers). Stages run in different threads (``overlap``) each count their own time, and may
    then sum to more than the wall time: that excess is what the overlap saved.
    """

    def __init__(self) -> None:
        self.seconds = dict.fromkeys(STAGES, 0.0)
        self.cpu_seconds = dict.fromkeys(STAGES, 0.0)
        self._lock = threading.Lock()
        self._local = threading.local()
        self._decoded: dict[int, float] = {}  # frames in flight only: memory stays bounded
        self._latencies = [0, 0.0, math.inf, 0.0]  # count, sum, min, max

    def _stack(self) -> list[list]:
        if not hasattr(self._local, "stack"):
            self._local.stack = []
        return self._local.stack

    def _add(self, name: str, since: tuple[float, float], now: tuple[float, float]) -> None:
        with self._lock:
            self.seconds[name] += now[0] - since[0]
            self.cpu_seconds[name] += now[1] - since[1]

    def _check(self, name: str) -> None:
        """ValueError unless ``name`` is one of ``STAGES``."""
        if name not in self.seconds:
            raise ValueError(f"unknown stage {name!r}; stages are {', '.join(STAGES)}")

    @contextlib.contextmanager
    def stage(self, name: str) -> Iterator[None]:
        """Count the time inside the ``with`` in stage ``name`` (one of ``STAGES``)."""
        self._check(name)
        stack = self._stack()
        now = _now()
        if stack:
            self._add(stack[-1][0], stack[-1][1], now)
        stack.append([name, now])
        try:
            yield
        finally:
            now = _now()
            inner, since = stack.pop()
            self._add(inner, since, now)
            if stack:
                stack[-1][1] = now

    @contextlib.contextmanager
    def worker(self, name: str) -> Iterator[None]:
        """Count this thread's CPU seconds inside the ``with`` in stage ``name``, not its wall
        seconds: a worker that a stage of the calling thread waits for (whose wall time
        that stage counts already)."""
        self._check(name)
        start = _now()[1]
        try:
            yield
        finally:
            cpu = _now()[1] - start
            with self._lock:
                self.cpu_seconds[name] += cpu

    def timed(self, name: str, items: Iterable[T]) -> Iterator[T]:
        """``items``, the time spent producing each counted in stage ``name``."""
        it = iter(items)
        while True:
            with self.stage(name):
                item = next(it, _END)
            if item is _END:
                return
            yield item

    def decoded(self, t: int) -> None:
        """Frame ``t`` of pass 2 has just been decoded."""
        now = _now()[0]
        with self._lock:
            self._decoded[t] = now

    def encoded(self, t: int) -> None:
        """Frame ``t`` has just been handed to the encoder."""
        now = _now()[0]
        with self._lock:
            latency = now - self._decoded.pop(t)
            n, total, low, high = self._latencies
            self._latencies = [n + 1, total + latency, min(low, latency), max(high, latency)]

    def latency(self) -> dict[str, float]:
        """Decode-to-encode seconds of the frames encoded so far: mean, min and max."""
        n, total, low, high = self._latencies
        if not n:
            return {"mean": 0.0, "min": 0.0, "max": 0.0}
        return {"mean": total / n, "min": low, "max": high}
