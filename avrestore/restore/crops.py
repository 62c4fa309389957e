"""Restore runs of face crops with a model and the guidance it takes: per frame, the MFCC
window of the speech around it and the 68 landmarks a landmarker finds on the LQ crop."""

from __future__ import annotations

import contextlib
import itertools
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import torch
from torch import nn

from avrestore.models.contract import restorer_contract
from avrestore.models.landmarkers import Landmarker
from avrestore.restore.timing import StageClock
from avrestore.restore.window import restore_sequence


def split_windows(start: int, stop: int, frames_out: int, parts: int) -> list[tuple[int, int]]:
    """Frames ``start .. stop`` cut into at most ``parts`` spans of whole windows (multiples
    of ``frames_out`` from ``start``; the last takes the rest), as even as they can be."""
    windows = -(-(stop - start) // frames_out)
    cuts = [start + frames_out * (windows * i // parts) for i in range(parts)] + [stop]
    return [(a, b) for a, b in itertools.pairwise(cuts) if a < b]


class FaceRestorer:
    """Restores the crops of frames ``first .. first + n`` of a video (a ``RestoreFn``).

    ``audio`` holds the MFCC windows of every frame of the video (T, W_a, n_mfcc), or None
    when it has no audio track; ``landmarker`` is used only if the model's contract takes
    landmarks, and the windows go to each network that takes audio. ``model`` may be a
    stand-in with the same contract (``models.onnx_export.OnnxRestorer``); ``clock`` counts
    the landmarks and model stages.

    ``workers`` > 1 cuts each call's frames into that many spans of whole windows and
    restores them at once, landmarks and model, each in a thread of its own (torch, ONNX
    Runtime and dlib release the GIL while they compute). Each span reads its neighbours'
    frames as context, so every window reads what it reads in one piece: the output is the
    same. The workers' CPU seconds go to the landmarks and model stages, the wall time spent
    waiting for them to the model stage.
    """

    def __init__(
        self,
        model: nn.Module,
        audio: np.ndarray | None = None,
        landmarker: Landmarker | None = None,
        batch: int = 1,
        device: str | torch.device = "cpu",
        clock: StageClock | None = None,
        workers: int = 1,
    ) -> None:
        self.model, self.contract = model, restorer_contract(model)
        self.clock = StageClock() if clock is None else clock
        self.audio = audio
        self.landmarker = landmarker if self.contract.landmarks else None
        self.uses_audio = self.contract.audio is not None
        self.batch, self.device, self.workers = batch, device, workers

    @property
    def frames_in(self) -> int:
        """LQ frames the model reads per window."""
        return self.contract.frames_in

    @property
    def frames_out(self) -> int:
        """Frames the model restores per window."""
        return self.contract.frames_out

    def __call__(
        self, first: int, crops: np.ndarray, context: tuple[int, int] = (0, 0)
    ) -> np.ndarray:
        """Restored crops (n, S, S, 3) uint8 of frames ``first + before .. first + len(crops)
        - after``, the crops of ``context`` (before, after) read as context only."""
        before, after = context
        spans = split_windows(before, len(crops) - after, self.frames_out, self.workers)
        if len(spans) == 1:
            return self._restore(first, crops, context, self.clock.stage)
        ctx = (self.frames_in - self.frames_out) // 2

        def span(bounds: tuple[int, int]) -> np.ndarray:
            start, stop = bounds
            lo, hi = max(start - ctx, 0), min(stop + ctx, len(crops))
            return self._restore(
                first + lo, crops[lo:hi], (start - lo, hi - stop), self.clock.worker
            )

        with self.clock.stage("model"), ThreadPoolExecutor(len(spans), "avrestore-span") as pool:
            return np.concatenate(list(pool.map(span, spans)))

    def _restore(
        self,
        first: int,
        crops: np.ndarray,
        context: tuple[int, int],
        stage: Callable[[str], contextlib.AbstractContextManager],
    ) -> np.ndarray:
        """``__call__`` in one thread; ``stage(name)`` counts each stage's time."""
        before, after = context
        stop = len(crops) - after
        audio = None if self.audio is None else self.audio[first + before : first + stop]
        landmarks = None
        if self.landmarker is not None:
            with stage("landmarks"):
                landmarks = self.landmarker.predict_frames(crops[before:stop], audio)
        with stage("model"):
            return restore_sequence(
                self.model,
                crops,
                audio if self.uses_audio else None,
                landmarks,
                batch=self.batch,
                device=self.device,
                context=context,
            )
