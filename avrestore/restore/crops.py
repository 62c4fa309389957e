"""Restore runs of face crops with a model and the guidance it takes: per frame, the MFCC
window of the speech around it and the 68 landmarks a landmarker finds on the LQ crop."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from avrestore.models.contract import restorer_contract
from avrestore.models.landmarkers import Landmarker
from avrestore.restore.timing import StageClock
from avrestore.restore.window import restore_sequence


class FaceRestorer:
    """Restores the crops of frames ``first .. first + n`` of a video (a ``RestoreFn``).

    ``audio`` holds the MFCC windows of every frame of the video (T, W_a, n_mfcc), or None
    when it has no audio track; ``landmarker`` is used only if the model's contract takes
    landmarks, and the windows go to each network that takes audio. ``model`` may be a
    stand-in with the same contract (``models.onnx_export.OnnxRestorer``); ``clock`` counts
    the landmarks and model stages.
    """

    def __init__(
        self,
        model: nn.Module,
        audio: np.ndarray | None = None,
        landmarker: Landmarker | None = None,
        batch: int = 1,
        device: str | torch.device = "cpu",
        clock: StageClock | None = None,
    ) -> None:
        self.model, self.contract = model, restorer_contract(model)
        self.clock = StageClock() if clock is None else clock
        self.audio = audio
        self.landmarker = landmarker if self.contract.landmarks else None
        self.uses_audio = self.contract.audio is not None
        self.batch, self.device = batch, device

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
        stop = len(crops) - after
        audio = None if self.audio is None else self.audio[first + before : first + stop]
        landmarks = None
        if self.landmarker is not None:
            with self.clock.stage("landmarks"):
                landmarks = self.landmarker.predict_frames(crops[before:stop], audio)
        with self.clock.stage("model"):
            return restore_sequence(
                self.model,
                crops,
                audio if self.uses_audio else None,
                landmarks,
                batch=self.batch,
                device=self.device,
                context=context,
            )
