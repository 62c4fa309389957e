"""The landmarks given to networks that take them: found on the LQ frames by the deployed
landmarker (``models.landmarkers``: dlib by default, or a landmark network), or the teacher's
(dlib on the HQ crops, from ``prepare``) to see how much better landmarks would help."""

from __future__ import annotations

from typing import Protocol

import numpy as np
import torch

from avrestore.errors import InputError
from avrestore.evaluate.clips import EvalClip
from avrestore.models.landmarkers import DEFAULT_LANDMARKER, Landmarker, load_landmarker


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
    """A landmarker run on the frames the restoration network sees, with the audio."""

    def __init__(self, landmarker: Landmarker) -> None:
        self.landmarker, self.label = landmarker, landmarker.label

    def __call__(self, clip: EvalClip) -> np.ndarray:
        """Landmarks of every LQ frame (without speech, a network's audio branch gets None)."""
        a = self.landmarker.audio
        audio = None if a is None else clip.audio_windows(a.window, a.n_mfcc)
        return self.landmarker.predict_frames(clip.lq, audio)


def landmark_source(name: str | None, teacher: bool, device: str | torch.device) -> LandmarkSource:
    """Teacher landmarks, or the landmarker ``name`` (``dlib``, the default, or a landmark
    network's shipped name or weights path); InputError if both are asked for or it cannot be
    had."""
    if teacher:
        if name is not None:
            raise InputError("give either --teacher-landmarks or --landmark-model, not both")
        return TeacherLandmarks()
    try:
        return PredictedLandmarks(load_landmarker(name or DEFAULT_LANDMARKER, device))
    except InputError as e:
        raise InputError(
            f"a model takes landmarks, and the landmarker is missing: {e}; give "
            "--landmark-model dlib|NAME|PATH, or --teacher-landmarks to use the HQ crops' "
            "landmarks"
        ) from None
