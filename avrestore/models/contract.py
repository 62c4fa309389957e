"""What a model consumes and produces, declared by the model itself.

Every registered model has a ``contract`` property. Callers (``restore``, ``evaluate``,
training, the benchmarks) read it to decide what to feed a model and refuse one that does not
fit, instead of guessing from its class or its attributes:

- a ``RestorerContract``: ``frames_in`` LQ face crops in, the ``frames_out`` centre ones
  restored out, both of side ``crop_size`` (the size the model was trained on: ``restore``
  cuts faces at it); optionally the MFCC windows of the speech (``audio``), the 68 landmarks
  found on the LQ crops (``landmarks``) and codec side data (``side_data``, e.g. ``qp``); the
  parts evaluation may switch off in a trained model (``ablations``); for training, the
  multiple its frames' sides must be (``train_multiple``: its training losses do not pad) and
  the parameter-name prefixes of pretrained parts no training stage may change (``frozen``);
  whether it holds a learned optical-flow network that the ``flow`` objective pretrains
  through its ``flow_losses`` (``learned_flow``: BasicVSR++'s SPyNet);
- a ``LandmarkerContract``: one face crop in (resized to ``input_size`` inside), 68 points out,
  optionally with the frame's MFCC window.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from torch import Tensor, nn

from avrestore.audio.features import AUDIO_RATE, MFCC_WINDOW, N_MFCC
from avrestore.errors import InputError

N_LANDMARKS = 68  # dlib's 68-point layout, for every landmark input and output


@dataclass(frozen=True)
class AudioInput:
    """Per video frame, the ``window`` MFCC steps (of ``n_mfcc`` coefficients) of ``rate`` Hz
    mono speech around it (``avrestore.audio.audio_windows``)."""

    window: int = MFCC_WINDOW
    n_mfcc: int = N_MFCC
    rate: int = AUDIO_RATE


@dataclass(frozen=True)
class RestorerContract:
    """A face-crop restorer's inputs and outputs (see the module docstring)."""

    frames_in: int
    frames_out: int
    crop_size: int
    audio: AudioInput | None = None
    landmarks: bool = False
    side_data: tuple[str, ...] = ()
    ablations: tuple[str, ...] = ()
    train_multiple: int = 1
    frozen: tuple[str, ...] = ()
    learned_flow: bool = False


@dataclass(frozen=True)
class LandmarkerContract:
    """A landmark network's input size and whether it reads the frame's MFCC window."""

    input_size: int
    audio: AudioInput | None = None


def restorer_contract(model: nn.Module, name: str = "the model") -> RestorerContract:
    """``model``'s contract, or InputError if it is not a face restorer."""
    contract = getattr(model, "contract", None)
    if not isinstance(contract, RestorerContract):
        raise InputError(f"{name} holds a {type(model).__name__}, not a face restoration model")
    return contract


def restorer_inputs(
    contract: RestorerContract,
    frames: Tensor,
    audio: Tensor | None = None,
    landmarks: Tensor | None = None,
    crop: Tensor | None = None,
    audio_mask: Tensor | None = None,
    side_data: Mapping[str, Tensor | None] | None = None,
) -> dict[str, Tensor]:
    """The keyword arguments of one forward call: the frames, and of the rest only what the
    contract consumes (``crop``, where the frames lie in the face crop, and ``audio_mask``,
    which items have speech, go with the audio; of ``side_data``, e.g. ``{"qp": ...}``, the
    entries the contract's ``side_data`` names and the caller gave, under their own names).
    The LQ frames are trimmed at both ends to the ``frames_in`` the model reads (a 1-frame
    model gets the centre of a longer window); side data are passed as given (the caller
    shapes them as the model reads them, e.g. ``qp`` per output frame)."""
    extra = (frames.shape[1] - contract.frames_in) // 2
    if extra < 0 or frames.shape[1] - 2 * extra != contract.frames_in:
        raise ValueError(f"{frames.shape[1]} frames cannot be centred on {contract.frames_in}")
    inputs = {"frames": frames[:, extra : frames.shape[1] - extra]}
    if contract.audio is not None and audio is not None:
        inputs["audio"] = audio
        if audio_mask is not None:
            inputs["audio_mask"] = audio_mask
    if contract.audio is not None and crop is not None:
        inputs["crop"] = crop
    if contract.landmarks and landmarks is not None:
        inputs["landmarks"] = landmarks
    for name, value in (side_data or {}).items():
        if name in contract.side_data and value is not None:
            inputs[name] = value
    return inputs


def landmarker_contract(model: nn.Module, name: str = "the model") -> LandmarkerContract:
    """``model``'s contract, or InputError if it is not a landmark network."""
    contract = getattr(model, "contract", None)
    if not isinstance(contract, LandmarkerContract):
        raise InputError(f"{name} holds a {type(model).__name__}, not a landmark network")
    return contract
