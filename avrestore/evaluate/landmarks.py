"""The landmarks given to networks that take them: predicted by the audio-assisted landmark
net from the LQ frames, as in deployment, or the teacher's (dlib on the HQ crops, from
``prepare``) to see how much better landmarks would help."""

from __future__ import annotations

from typing import Protocol

import numpy as np
import torch

from avrestore.errors import InputError
from avrestore.evaluate.clips import EvalClip
from avrestore.models.landmark_net import LandmarkNet
from avrestore.models.weights import resolve_model

DEFAULT_LANDMARK_MODEL = "landmark-net"  # shipped as weights/landmark-net.safetensors
FRAMES_PER_CALL = 32


class LandmarkSource(Protocol):
    """Gives (T, 68, 2) landmarks in crop pixels for a clip's evaluated frames."""

    label: str

    def __call__(self, clip: EvalClip) -> np.ndarray: ...


class TeacherLandmarks:
    """dlib's landmarks of the HQ crops: what the landmark net is trained to predict."""

    label = "teacher"

    def __call__(self, clip: EvalClip) -> np.ndarray:
        """The clip's teacher landmarks."""
        return clip.teacher_landmarks


class PredictedLandmarks:
    """The landmark net run on the frames the restoration network sees, with the audio."""

    def __init__(self, net: LandmarkNet, label: str, device: str | torch.device) -> None:
        self.net, self.label, self.device = net.to(device).eval(), label, device

    def __call__(self, clip: EvalClip) -> np.ndarray:
        """Landmarks of every LQ frame (the audio branch gets None on a silent clip)."""
        encoder = self.net.audio
        audio = None if encoder is None else clip.audio_windows(encoder.window, encoder.n_mfcc)
        return self.net.predict_frames(clip.lq, audio, FRAMES_PER_CALL)


def landmark_source(name: str | None, teacher: bool, device: str | torch.device) -> LandmarkSource:
    """Teacher landmarks, or the landmark net ``name`` (a weights path or a shipped name;
    default ``landmark-net``); InputError if both are asked for or the net cannot be had."""
    if teacher:
        if name is not None:
            raise InputError("give either --teacher-landmarks or --landmark-model, not both")
        return TeacherLandmarks()
    name = name or DEFAULT_LANDMARK_MODEL
    try:
        net = resolve_model(name)
    except InputError as e:
        raise InputError(
            f"a model takes landmarks, and the landmark net is missing: {e}; give "
            "--landmark-model PATH, or --teacher-landmarks to use the HQ crops' landmarks"
        ) from None
    if not isinstance(net, LandmarkNet):
        raise InputError(f"--landmark-model {name} holds a {type(net).__name__}, not a LandmarkNet")
    return PredictedLandmarks(net, name, device)
