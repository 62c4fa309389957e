"""Where a restorer's landmarks come from at training and at deployment alike.

- ``dlib`` (the default): dlib's 68-point shape predictor on the LQ face crop, in the face box
  the crop convention implies (``face_box_in_crop``; ``restore`` and ``prepare`` cut faces the
  same way). On the test speakers' 224² crops it is 1.7 px from the teacher (dlib on the clean
  crop) at CRF 45, blur k 21 and x4, where our CPU-trained landmark network is 8 px off
  (``benchmarks/landmark_error.py``, BENCHMARKS.md). The paper retrains PFLD because detectors
  fail on its degraded faces; on these crops dlib does not, so it is the better deployed
  landmarker until a landmark network beats it.
- a landmark network (a shipped name such as ``landmark-net`` or a weights path): the
  audio-assisted PFLD of ``landmark_net``, given the speech.

Each is a ``Landmarker``: ``predict_frames(frames, audio)`` -> (T, 68, 2) in crop pixels.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np
import torch
from torch import nn

from avrestore.faces.crop import face_box_in_crop
from avrestore.faces.landmarks import LandmarkPredictor
from avrestore.models.contract import N_LANDMARKS, AudioInput, landmarker_contract
from avrestore.models.weights import resolve_model

DLIB = "dlib"
DEFAULT_LANDMARKER = DLIB


class Landmarker(Protocol):
    """Gives 68 landmarks per LQ face crop."""

    label: str
    audio: AudioInput | None  # the MFCC windows of the speech it reads, or None

    def predict_frames(self, frames: np.ndarray, audio: np.ndarray | None = None) -> np.ndarray:
        """(T, 68, 2) float32 landmarks of RGB uint8 crops (T, H, W, 3), with their MFCC
        windows (T, W_a, n_mfcc) or None."""
        ...


class DlibCropLandmarks:
    """dlib's shape predictor in the face box a face crop implies (no detection: ~4 ms a frame)."""

    label = DLIB
    audio = None

    def __init__(self) -> None:
        self.predictor = LandmarkPredictor()

    def predict_frames(self, frames: np.ndarray, audio: np.ndarray | None = None) -> np.ndarray:
        """Landmarks of each crop; the speech is not used."""
        if not len(frames):
            return np.zeros((0, N_LANDMARKS, 2), np.float32)
        box = face_box_in_crop(frames.shape[2], frames.shape[1])
        return np.stack([self.predictor.predict(f, box) for f in frames]).astype(np.float32)


@dataclass
class NetLandmarks:
    """A landmark network run on the crops with their speech."""

    net: nn.Module
    label: str

    @property
    def audio(self) -> AudioInput | None:
        """The MFCC windows the network's audio branch reads, if it has one."""
        return landmarker_contract(self.net).audio

    def predict_frames(self, frames: np.ndarray, audio: np.ndarray | None = None) -> np.ndarray:
        """Landmarks of each crop (the audio branch gets None without speech)."""
        return self.net.predict_frames(frames, audio)


def load_landmarker(name: str, device: str | torch.device = "cpu") -> Landmarker:
    """``dlib``, or the landmark network ``name`` (a shipped name or weights path) on
    ``device``; InputError if it cannot be had or is no landmark network."""
    if name == DLIB:
        return DlibCropLandmarks()
    net = resolve_model(name)
    landmarker_contract(net, f"landmark model {name}")
    return NetLandmarks(net.to(device).eval(), name)
