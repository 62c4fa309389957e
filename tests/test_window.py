"""Sliding-window restoration of sequences, whole (restore_sequence) and streamed in blocks."""

from __future__ import annotations

import threading

import numpy as np
import pytest
import torch
from torch import Tensor, nn

from avrestore.models.contract import AudioInput, RestorerContract
from avrestore.models.registry import build
from avrestore.restore.blocks import BlockRestorer, plan_blocks
from avrestore.restore.crops import FaceRestorer, split_windows
from avrestore.restore.window import restore_sequence


class CentreFrames(nn.Module):
    """Returns each window's centre frames unchanged and records, per output frame, the frame
    number written in its pixels and in its audio and landmark inputs."""

    def __init__(self, frames_in: int, frames_out: int) -> None:
        super().__init__()
        self.frames_in, self.frames_out = frames_in, frames_out
        self.contract = RestorerContract(frames_in, frames_out, 4, AudioInput(), landmarks=True)
        self.seen: list[tuple[int, int, int]] = []

    def forward(self, frames: Tensor, audio: Tensor | None, landmarks: Tensor | None) -> Tensor:
        ctx = (self.frames_in - self.frames_out) // 2
        centre = frames[:, ctx : ctx + self.frames_out]
        for b in range(len(frames)):
            for j in range(self.frames_out):
                pixel = round(float(centre[b, j, 0, 0, 0]) * 255)
                self.seen.append((pixel, int(audio[b, j, 0, 0]), int(landmarks[b, j, 0, 0])))
        return centre


def _numbered(t: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Frames, audio windows and landmarks whose values are the frame number."""
    idx = np.arange(t)
    frames = np.broadcast_to(idx[:, None, None, None], (t, 4, 4, 3)).astype(np.uint8)
    audio = np.broadcast_to(idx[:, None, None], (t, 21, 13)).astype(np.float32)
    landmarks = np.broadcast_to(idx[:, None, None], (t, 68, 2)).astype(np.float32)
    return frames, audio, landmarks


@pytest.mark.parametrize("t", [1, 2, 3, 7, 10, 11])
@pytest.mark.parametrize("batch", [1, 4])
def test_every_frame_is_restored_once_with_its_own_audio_and_landmarks(t: int, batch: int) -> None:
    model = CentreFrames(7, 3)
    frames, audio, landmarks = _numbered(t)
    out = restore_sequence(model, frames, audio, landmarks, batch=batch)
    assert out.shape == frames.shape and np.array_equal(out, frames)
    # Windows run once each, in order: outputs 0 .. t-1 are the real frames, each with its own
    # audio and landmarks; the outputs after them fill the last window and are dropped.
    assert len(model.seen) == -(-t // 3) * 3
    assert model.seen[:t] == [(i, i, i) for i in range(t)]


class TwoAtOnce(CentreFrames):
    """CentreFrames whose windows wait for each other in pairs: a window that does not run
    beside another breaks the barrier (after a timeout) and fails."""

    def __init__(self) -> None:
        super().__init__(7, 3)
        self.barrier = threading.Barrier(2, timeout=10)

    def forward(self, frames: Tensor, audio: Tensor | None, landmarks: Tensor | None) -> Tensor:
        self.barrier.wait()
        return super().forward(frames, audio, landmarks)


def test_two_workers_restore_two_spans_at_once_each_frame_once() -> None:
    frames, audio, _ = _numbered(16)
    model = TwoAtOnce()
    restorer = FaceRestorer(model, audio, Numbered(), workers=2)
    # Frames 2..14 of 16 restored, 2 read as context on each side: spans 2..8 and 8..14, each
    # two windows, which meet at the barrier in pairs.
    out = restorer(0, frames, (2, 2))
    assert np.array_equal(out, frames[2:14])
    assert sorted(model.seen) == [(i, i, i) for i in range(2, 14)]
    assert split_windows(2, 14, 3, 2) == [(2, 8), (8, 14)]
    assert split_windows(0, 13, 3, 2) == [(0, 6), (6, 13)]  # the rest goes to the last
    assert split_windows(0, 2, 3, 2) == [(0, 2)]  # fewer windows than workers


class Numbered:
    """A landmarker whose landmarks are each crop's frame number (its pixel value)."""

    def predict_frames(self, crops: np.ndarray, audio: np.ndarray | None) -> np.ndarray:
        return np.broadcast_to(crops[:, :1, :1, 0], (len(crops), 68, 2)).astype(np.float32)


def test_blocks_cover_each_run_once_with_aligned_windows() -> None:
    runs = [(0, 23), (30, 31), (35, 52), (60, 64)]
    blocks = plan_blocks(runs, frames_in=7, frames_out=3, length=8)
    covered = [t for b in blocks for t in range(b.start, b.stop)]
    assert covered == [t for a, b in runs for t in range(a, b)]
    for b in blocks:
        run_start, run_stop = next(r for r in runs if r[0] <= b.start < r[1])
        assert (b.start - run_start) % 3 == 0  # windows fall where the whole run's do
        assert run_start <= b.first <= b.start and b.stop <= b.last <= run_stop
        # Only the context the first and last windows read: no window is run twice.
        assert b.start - b.first in (0, 2) and b.last - b.stop in (0, 1, 2)
    # A remainder no longer than the context is restored with the block before it.
    assert [(b.start, b.stop) for b in blocks if b.start >= 60] == [(60, 64)]


def test_streamed_blocks_run_each_window_once() -> None:
    model = CentreFrames(7, 3)
    frames, audio, landmarks = _numbered(40)

    def restore(first: int, crops: np.ndarray, context: tuple[int, int]) -> np.ndarray:
        span = slice(first + context[0], first + len(crops) - context[1])
        return restore_sequence(model, crops, audio[span], landmarks[span], context=context)

    stream = BlockRestorer(plan_blocks([(0, 40)], 7, 3, length=6), restore)
    for i in range(40):
        stream.add(i, frames[i])
        assert all(t == frame[0, 0, 0] for t, frame in stream.ready(i + 1))
    # As many windows as restoring the run whole: 14, the last one's 2 spare outputs dropped.
    assert len(model.seen) == 42
    assert model.seen[:40] == [(i, i, i) for i in range(40)]


class WindowMix(nn.Module):
    """Each output mixes its own frame with the mean of the whole window and its guidance, so
    that any difference in what a window reads (context, padding, alignment) shows."""

    frames_in, frames_out = 7, 3
    contract = RestorerContract(7, 3, 8, AudioInput(), landmarks=True)

    def forward(self, frames: Tensor, audio: Tensor, landmarks: Tensor) -> Tensor:
        centre = frames[:, 2:5]
        guide = audio.mean((2, 3)) / 10 + landmarks.mean((2, 3)) / 100
        return 0.5 * centre + 0.4 * frames.mean(1, keepdim=True) + guide[..., None, None, None]


@pytest.mark.parametrize("length", [3, 6, 10])
def test_streamed_blocks_equal_restoring_each_run_whole(length: int) -> None:
    model = WindowMix()
    rng = np.random.default_rng(0)
    t, runs = 40, [(0, 17), (20, 21), (24, 40)]
    frames = rng.integers(0, 256, (t, 8, 8, 3), dtype=np.uint8)
    audio = rng.random((t, 21, 13)).astype(np.float32)
    landmarks = rng.random((t, 68, 2)).astype(np.float32)

    def restore(first: int, crops: np.ndarray, context: tuple[int, int] = (0, 0)) -> np.ndarray:
        span = slice(first + context[0], first + len(crops) - context[1])
        return restore_sequence(model, crops, audio[span], landmarks[span], context=context)

    streamed: dict[int, np.ndarray] = {}
    stream = BlockRestorer(plan_blocks(runs, model.frames_in, model.frames_out, length), restore)
    active = {i for a, b in runs for i in range(a, b)}
    for i in range(t):  # frames arrive one at a time, as from a decoder
        if i in active:
            stream.add(i, frames[i])
        streamed.update(stream.ready(i + 1))
    assert sorted(streamed) == sorted(active)
    for a, b in runs:
        whole = restore(a, frames[a:b])
        assert np.array_equal(np.stack([streamed[i] for i in range(a, b)]), whole)


def test_tiny_gavn_restores_a_sequence_of_any_length(tiny_gavn_spec: dict) -> None:
    args = dict(tiny_gavn_spec)
    model = build(args.pop("type"), **args).eval()
    rng = np.random.default_rng(1)
    frames = rng.integers(0, 256, (5, 32, 48, 3), dtype=np.uint8)
    audio = rng.standard_normal((5, 21, 13)).astype(np.float32)
    out = restore_sequence(model, frames, audio)
    assert out.shape == frames.shape and out.dtype == np.uint8
    assert np.array_equal(out, frames)  # a fresh GAVN returns its input, every frame once
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.02 * torch.randn_like(p))
    assert not np.array_equal(restore_sequence(model, frames, audio), frames)
