"""The methods compared: the degraded ``input``, ``bicubic`` upscaling, and networks given by
a registered name with shipped weights or a ``.safetensors`` path.

A network name may end in ablations its contract declares (``ablations``), each ``:no-<part>``:
``gavn-small-car:no-audio`` runs the checkpoint without its audio input, ``:no-landmarks``
without landmarks, ``:no-temporal`` with GAVN's temporal features T replaced by zeros."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import cv2
import numpy as np
import torch
from torch import nn

from avrestore.errors import InputError
from avrestore.evaluate.clips import EvalClip
from avrestore.evaluate.landmarks import LandmarkSource, landmark_source
from avrestore.models.contract import restorer_contract
from avrestore.models.weights import resolve_model
from avrestore.restore.window import restore_sequence

INPUT, BICUBIC = "input", "bicubic"
REFERENCES = (INPUT, BICUBIC)
WITHHELD = frozenset({"audio", "landmarks"})  # ablations made by not passing an input


class Method(Protocol):
    """Restores a clip's evaluated frames to (T, H, W, 3) uint8 the size of its HQ frames."""

    label: str

    def restore(self, clip: EvalClip) -> np.ndarray: ...


@dataclass(frozen=True)
class InputFrames:
    """The degraded frames as they are; small ones are enlarged by pixel repetition, so that
    each LQ pixel is shown (and scored) unchanged."""

    label: str = INPUT

    def restore(self, clip: EvalClip) -> np.ndarray:
        """The degraded frames at the HQ size."""
        if clip.degraded.shape == clip.hq.shape:
            return clip.degraded
        h, w = clip.hq.shape[1:3]
        return np.stack(
            [cv2.resize(f, (w, h), interpolation=cv2.INTER_NEAREST) for f in clip.degraded]
        )


@dataclass(frozen=True)
class Bicubic:
    """Bicubic upscaling of the small frames: the input every network receives."""

    label: str = BICUBIC

    def restore(self, clip: EvalClip) -> np.ndarray:
        """The bicubic-upscaled frames."""
        return clip.lq


@dataclass(frozen=True)
class Network:
    """A frame-restoration network run over the clip in sliding windows."""

    label: str
    model: nn.Module
    landmarks: LandmarkSource | None
    batch: int
    device: str | torch.device
    off: frozenset[str] = frozenset()

    @property
    def reads_qp(self) -> bool:
        """Whether the model reads QP maps (``evaluate`` then keeps them with the clips)."""
        return "qp" in restorer_contract(self.model).side_data

    def restore(self, clip: EvalClip) -> np.ndarray:
        """The restored frames; audio windows, landmarks and QP maps only for models that
        take them and have them on (a silent clip runs with the audio branch off; a clip not
        compressed at the crop has no QP maps, and DAVD-Net's CPM is then off)."""
        m, a = self.model, restorer_contract(self.model).audio
        audio = None
        if a is not None and "audio" not in self.off:
            audio = clip.audio_windows(a.window, a.n_mfcc)
        marks = None
        if self.landmarks is not None and "landmarks" not in self.off:
            marks = self.landmarks(clip)
        side = {"qp": clip.qp} if self.reads_qp and clip.qp is not None else {}
        # Inputs are switched off by withholding them; any other part by the model itself.
        inside = self.off - WITHHELD
        args = (m, clip.lq, audio, marks, self.batch, self.device, side)
        if not inside:
            return restore_sequence(*args)
        with m.ablate(inside):
            return restore_sequence(*args)


def labels(names: Sequence[str]) -> list[str]:
    """Row labels: the file stem of a weights path (and its ablations), unless two clash."""
    stems = []
    for name in names:
        base, sep, off = name.partition(":")
        stems.append((Path(base).stem if base.endswith(".safetensors") else base) + sep + off)
    return stems if len(set(stems)) == len(stems) else list(names)


def build_methods(
    names: Sequence[str],
    downscales: bool,
    landmark_model: str | None = None,
    teacher_landmarks: bool = False,
    batch: int = 1,
    device: str | torch.device = "cpu",
) -> list[Method]:
    """The methods named, networks loaded onto ``device``; InputError for an empty or
    repeated list, an unknown name, a model that restores no frames, or ``bicubic`` on a
    task that does not downscale (it would repeat ``input``)."""
    if not names:
        raise InputError("--models names no model")
    if len(set(names)) != len(names):
        raise InputError(f"--models names a model twice: {','.join(names)}")
    if BICUBIC in names and not downscales:
        raise InputError("bicubic applies to the tasks that downscale (sr, mixed)")
    if batch < 1:
        raise InputError(f"--batch must be at least 1, got {batch}")
    parsed = {n: _ablations(n) for n in names if n not in REFERENCES}
    loaded = {base: _load_network(base, device) for base, _ in parsed.values()}
    networks = {n: loaded[base] for n, (base, _) in parsed.items()}
    for n, (base, off) in parsed.items():
        known = set(restorer_contract(networks[n]).ablations)
        if not off <= known:
            raise InputError(
                f"--models {n}: {base} can switch off {', '.join(sorted(known)) or 'nothing'}"
            )
    source = None
    if any(restorer_contract(m).landmarks for m in networks.values()):
        source = landmark_source(landmark_model, teacher_landmarks, device)
    methods: list[Method] = []
    for name, label in zip(names, labels(names), strict=True):
        if name == INPUT:
            methods.append(InputFrames(label))
        elif name == BICUBIC:
            methods.append(Bicubic(label))
        else:
            model = networks[name]
            marks = source if restorer_contract(model).landmarks else None
            methods.append(Network(label, model, marks, batch, device, parsed[name][1]))
    return methods


def _ablations(name: str) -> tuple[str, frozenset[str]]:
    """``model:no-a:no-b`` -> (``model``, {a, b}); InputError for a malformed suffix."""
    base, *suffixes = name.split(":")
    bad = [x for x in suffixes if not x.startswith("no-") or len(x) <= 3]
    if bad:
        raise InputError(f"--models {name}: suffixes are :no-<part>, got :{bad[0]}")
    return base, frozenset(x[3:] for x in suffixes)


def _load_network(name: str, device: str | torch.device) -> nn.Module:
    try:
        model = resolve_model(name)
    except InputError as e:
        raise InputError(
            f"--models {name}: {e} (besides {' and '.join(REFERENCES)}, give a registered "
            "name with shipped weights or a .safetensors path)"
        ) from None
    restorer_contract(model, f"--models {name}")
    return model.to(device).eval()
