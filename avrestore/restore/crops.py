"""Restore runs of face crops with a model and the guidance it takes: per frame, the MFCC
window of the speech around it and the 68 landmarks the landmark network finds on the crop."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from avrestore.restore.window import restore_sequence

LANDMARK_BATCH = 32


@torch.inference_mode()
def predict_landmarks(
    net: nn.Module, crops: np.ndarray, audio: np.ndarray | None, device: str | torch.device
) -> np.ndarray:
    """Landmarks (n, 68, 2) float32 in crop pixels for crops (n, S, S, 3) uint8 and their MFCC
    windows (n, W_a, n_mfcc) or None."""
    out = []
    for i in range(0, len(crops), LANDMARK_BATCH):
        x = torch.from_numpy(crops[i : i + LANDMARK_BATCH]).to(device)
        x = x.permute(0, 3, 1, 2).float() / 255
        a = None if audio is None else torch.from_numpy(audio[i : i + LANDMARK_BATCH]).to(device)
        out.append(net(x, a).float().cpu().numpy())
    return np.concatenate(out).astype(np.float32)


class FaceRestorer:
    """Restores the crops of frames ``first .. first + n`` of a video (a ``RestoreFn``).

    ``audio`` holds the MFCC windows of every frame of the video (T, W_a, n_mfcc), or None
    when it has no audio track; ``landmark_net`` is used only if the model has a landmark
    branch (``use_landmarks``), and the windows go to each network that takes audio.
    """

    def __init__(
        self,
        model: nn.Module,
        audio: np.ndarray | None = None,
        landmark_net: nn.Module | None = None,
        batch: int = 1,
        device: str | torch.device = "cpu",
    ) -> None:
        self.model = model
        self.audio = audio
        self.landmark_net = landmark_net if getattr(model, "use_landmarks", False) else None
        self.uses_audio = bool(getattr(model, "use_audio", False))
        self.batch, self.device = batch, device

    @property
    def frames_in(self) -> int:
        """LQ frames the model reads per window."""
        return int(self.model.frames_in)

    @property
    def frames_out(self) -> int:
        """Frames the model restores per window."""
        return int(self.model.frames_out)

    def __call__(self, first: int, crops: np.ndarray) -> np.ndarray:
        """Restored crops (n, S, S, 3) uint8 of frames ``first .. first + n``."""
        audio = None if self.audio is None else self.audio[first : first + len(crops)]
        landmarks = None
        if self.landmark_net is not None:
            landmarks = predict_landmarks(self.landmark_net, crops, audio, self.device)
        return restore_sequence(
            self.model,
            crops,
            audio if self.uses_audio else None,
            landmarks,
            batch=self.batch,
            device=self.device,
        )
