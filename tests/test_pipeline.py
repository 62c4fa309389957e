"""The threads beside the model (``restore.overlap``) and the stage clock (``restore.timing``):
every item through in order, errors carried to the caller, threads stopped on leaving, and
stage seconds that never count a moment twice. No media, no model: milliseconds each."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest

from avrestore.restore import timing
from avrestore.restore.overlap import in_background, prefetched
from avrestore.restore.timing import STAGES, StageClock


def test_every_item_goes_through_the_threads_once_and_in_order() -> None:
    threads = threading.active_count()
    produced = list(prefetched((i for i in range(500)), depth=2))
    assert produced == list(range(500))
    consumed: list[int] = []
    with in_background(consumed.append, depth=2) as submit:
        for i in produced:
            submit(i)
    assert consumed == produced  # all of them by the time the ``with`` is left
    assert threading.active_count() == threads


def test_an_error_in_a_decoding_or_encoding_thread_reaches_the_caller() -> None:
    threads = threading.active_count()

    def decode() -> Iterator[int]:
        yield 1
        raise ValueError("decoder failed")

    with pytest.raises(ValueError, match="decoder failed"):
        list(prefetched(decode(), 2))
    consumed: list[int] = []

    def encode(item: int) -> None:
        if item == 3:
            raise ValueError("encoder failed")
        consumed.append(item)

    with pytest.raises(ValueError, match="encoder failed"), in_background(encode, 2) as submit:
        for i in range(10):
            submit(i)
    assert consumed == [0, 1, 2]
    assert threading.active_count() == threads


def test_leaving_early_stops_the_threads_and_closes_the_source() -> None:
    threads = threading.active_count()
    closed = threading.Event()

    def frames() -> Iterator[int]:
        try:
            yield from range(1000)
        finally:
            closed.set()  # a decoder closing its file

    early = prefetched(frames(), 2)
    assert next(early) == 0
    early.close()
    assert closed.is_set() and threading.active_count() == threads

    # An error in the caller (Ctrl-C, a failing model) drops what is queued and stops the thread.
    with pytest.raises(KeyboardInterrupt), in_background(lambda item: None, 2) as submit:
        submit(0)
        raise KeyboardInterrupt
    assert threading.active_count() == threads


@pytest.fixture
def fake_clock(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """Wall and CPU clocks that read ``now[0]`` and move only when a test moves them."""
    now = [0.0]
    monkeypatch.setattr(timing, "_now", lambda: (now[0], now[0] / 2))
    return now


def test_a_nested_stage_pauses_the_outer_one(fake_clock: list[float]) -> None:
    clock = StageClock()
    with clock.stage("detect"):
        fake_clock[0] += 1
        with clock.stage("decode"):
            fake_clock[0] += 2
        fake_clock[0] += 3
    assert clock.seconds["detect"] == 4 and clock.seconds["decode"] == 2
    assert clock.cpu_seconds["detect"] == 2 and clock.cpu_seconds["decode"] == 1
    assert sum(clock.seconds.values()) == 6  # the wall time, not a second counted twice
    assert list(clock.seconds) == list(STAGES)
    with pytest.raises(ValueError, match="unknown stage"), clock.stage("lunch"):
        pass


def test_a_worker_adds_its_cpu_seconds_but_no_wall_seconds(fake_clock: list[float]) -> None:
    clock = StageClock()
    worker = threading.Thread(target=lambda: _work(clock, fake_clock))
    worker.start()
    worker.join()
    # Its wall time is that of the stage its caller waits in, counted there.
    assert clock.cpu_seconds["model"] == 2 and clock.seconds["model"] == 0
    with pytest.raises(ValueError, match="unknown stage"), clock.worker("lunch"):
        pass


def _work(clock: StageClock, fake_clock: list[float]) -> None:
    with clock.worker("model"):
        fake_clock[0] += 4


def test_timed_counts_the_making_of_each_item_and_latency_is_decode_to_encode(
    fake_clock: list[float],
) -> None:
    clock = StageClock()

    def slow() -> Iterator[int]:
        for i in range(3):
            fake_clock[0] += 0.5  # decoding a frame
            yield i

    for t in clock.timed("decode", slow()):
        clock.decoded(t)
        fake_clock[0] += t + 1  # frame t waits t + 1 seconds for the model
        clock.encoded(t)
    assert clock.seconds["decode"] == 1.5
    assert clock.latency() == {"mean": 2.0, "min": 1.0, "max": 3.0}
    assert StageClock().latency() == {"mean": 0.0, "min": 0.0, "max": 0.0}
