"""Decoding and encoding in threads of their own, beside the model: a pipeline of threads.

The decoder, the encoder, the model (torch or ONNX Runtime) and OpenCV all release the GIL
while they work, so a frame can be decoded and another encoded while the model runs. Each
hand-over is a queue of bounded depth, so memory stays bounded whatever the video's length;
an error in a thread is raised in the caller, and leaving early (an error, Ctrl-C) stops the
threads before the caller goes on.
"""

from __future__ import annotations

import contextlib
import queue
import threading
from collections.abc import Callable, Iterable, Iterator
from typing import TypeVar

T = TypeVar("T")

_DONE = object()  # the end of a stream of items
_POLL = 0.1  # seconds between looks at the stop flag while a queue is full or empty


class _Failed:
    """An exception raised in a thread, carried to the caller."""

    def __init__(self, error: BaseException) -> None:
        self.error = error


def _put(q: queue.Queue, item: object, stop: threading.Event) -> bool:
    """Put ``item`` unless ``stop`` is set first; whether it was put."""
    while not stop.is_set():
        with contextlib.suppress(queue.Full):
            q.put(item, timeout=_POLL)
            return True
    return False


def prefetched(items: Iterable[T], depth: int) -> Iterator[T]:
    """``items``, produced in a thread of their own up to ``depth`` ahead of the caller."""
    q: queue.Queue = queue.Queue(depth)
    stop = threading.Event()

    def produce() -> None:
        it = iter(items)
        try:
            for item in it:
                if not _put(q, item, stop):
                    break
            else:
                _put(q, _DONE, stop)
        except BaseException as e:  # carried to the caller, which raises it
            _put(q, _Failed(e), stop)
        finally:
            if hasattr(it, "close"):
                it.close()  # a generator's own clean-up (closing its file) in its own thread

    thread = threading.Thread(target=produce, name="avrestore-decode", daemon=True)
    thread.start()
    try:
        while (item := q.get()) is not _DONE:
            if isinstance(item, _Failed):
                raise item.error
            yield item
    finally:
        stop.set()
        thread.join()


@contextlib.contextmanager
def in_background(consume: Callable[[T], None], depth: int) -> Iterator[Callable[[T], None]]:
    """Yield a function queueing items for ``consume``, which a thread of its own calls in
    order; on leaving, every item has been consumed (or, on an error, the thread stopped) and
    an error of ``consume`` is raised here."""
    q: queue.Queue = queue.Queue(depth)
    stop = threading.Event()
    failed: list[BaseException] = []

    def run() -> None:
        while not stop.is_set():
            try:
                item = q.get(timeout=_POLL)
            except queue.Empty:
                continue
            if item is _DONE:
                return
            try:
                consume(item)
            except BaseException as e:  # raised in the caller by the next submit or on exit
                failed.append(e)
                stop.set()

    def submit(item: T) -> None:
        if failed or not _put(q, item, stop):
            raise failed[0]

    thread = threading.Thread(target=run, name="avrestore-encode", daemon=True)
    thread.start()
    try:
        yield submit
    except BaseException:
        stop.set()  # the items not yet consumed are dropped: the output is being discarded
        raise
    finally:
        if not stop.is_set():
            _put(q, _DONE, stop)
        thread.join()
    if failed:
        raise failed[0]
