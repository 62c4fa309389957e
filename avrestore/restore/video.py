"""Restore the faces of a video file: the whole command behind ``avrestore restore``.

Checks every argument before the long work; finds and tracks the faces (pass 1), restores
and pastes them as the frames stream through (pass 2) and encodes H.264 at ``CRF`` with the
input's own audio (native rate and channels). The output appears whole or not at all.

Memory does not grow with the video's length except through its audio, which is decoded
whole: ``read_audio`` for the MFCCs and for muxing (``VideoWriter`` takes the whole track).
That is 0.34 MiB per second held at 44.1 kHz stereo, plus a transient of about 1.4 MiB per
second while the MFCCs are computed (BENCHMARKS.md).
"""

from __future__ import annotations

import contextlib
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from torch import nn

from avrestore.audio import AUDIO_RATE, audio_windows
from avrestore.errors import InputError
from avrestore.media.audio import read_audio
from avrestore.media.files import atomic_path, check_output, existing_file
from avrestore.media.video import (
    VideoWriter,
    container_format,
    odd_size_note,
    probe,
    warn_if_short,
)
from avrestore.models.contract import restorer_contract
from avrestore.models.device import torch_device
from avrestore.models.landmarkers import DEFAULT_LANDMARKER, load_landmarker
from avrestore.models.weights import resolve_model
from avrestore.restore.compare import comparison
from avrestore.restore.crops import FaceRestorer
from avrestore.restore.stream import plan_restoration, restored_frames

TASKS = ("car", "deblur", "sr")
DEFAULT_SCALE = 4  # the papers' usual super-resolution factor
CRF = 16  # visually transparent for the restored faces, and for the untouched rest

ModelArg = str | os.PathLike | nn.Module


@dataclass(frozen=True)
class RestoreSummary:
    """What a run did: frames written, how many had a face restored, face tracks, time."""

    output: Path
    frames: int
    fps: float
    restored_frames: int
    tracks: int
    has_audio: bool
    seconds: float


def default_model(task: str) -> str:
    """The shipped checkpoint for ``task``: ``weights/gavn-small-<task>.safetensors``."""
    return f"gavn-small-{task}"


def task_scale(task: str, scale: int | None) -> int:
    """The upscaling factor of ``task``: 1 for car and deblur, ``scale`` (2-8) for sr."""
    if task not in TASKS:
        raise InputError(f"unknown task {task!r}; choose one of {', '.join(TASKS)}")
    if task != "sr":
        if scale not in (None, 1):
            raise InputError(f"--scale applies to --task sr only, not {task}")
        return 1
    scale = DEFAULT_SCALE if scale is None else scale
    if not 2 <= scale <= 8:
        raise InputError(f"--scale must lie in 2-8, got {scale}")
    return scale


def _load(model: ModelArg) -> nn.Module:
    return model if isinstance(model, nn.Module) else resolve_model(os.fspath(model))


def load_restoration_model(model: ModelArg) -> nn.Module:
    """A face restoration model (see ``models.contract``) from a name, path or module."""
    net = _load(model)
    restorer_contract(net, f"--model {model}")
    return net.eval()


def _note(message: str) -> None:
    print(f"avrestore: restore: {message}", file=sys.stderr)


def _check_compare(compare: Path, src: Path, out: Path) -> Path:
    path = check_output(compare, src)
    if path.resolve() == out.resolve():
        raise InputError(f"--compare {path} is the output; choose another path")
    if path.suffix.lower() != ".png":
        container_format(path)
    return path


def _audio_windows(src: Path, fps: float, frames: int, model: nn.Module) -> np.ndarray | None:
    """The MFCC window of every frame from the 16 kHz mono speech; None without audio."""
    a = restorer_contract(model).audio
    speech = read_audio(src, rate=AUDIO_RATE if a is None else a.rate, mono=True)
    if speech is None:
        _note(f"{src} has no audio track: restoring without audio; the output is silent")
        return None
    if a is None:
        return None
    return audio_windows(speech.mono, a.rate, frames, fps, a.window, a.n_mfcc)


def restore_video(
    input: str | os.PathLike,
    output: str | os.PathLike,
    task: str,
    model: ModelArg | None = None,
    landmark_model: str | os.PathLike | None = None,
    scale: int | None = None,
    compare: str | os.PathLike | None = None,
    device: str = "cpu",
    all_faces: bool = False,
    batch: int = 1,
    max_frames: int | None = None,
    progress: bool = False,
) -> RestoreSummary:
    """Restore the face (``all_faces``: every face) of ``input`` for ``task`` into ``output``.

    ``model`` defaults to the task's shipped checkpoint, ``landmark_model`` (used only by a
    model with a landmark branch) to ``dlib`` on the LQ crop; ``compare`` also writes input |
    restored as a PNG of the middle frame or, for a video suffix, a video.
    """
    start = time.perf_counter()
    src = existing_file(input)
    out = check_output(output, src)
    container_format(out)
    compare_path = None if compare is None else _check_compare(Path(compare), src, out)
    factor = task_scale(task, scale)
    if batch < 1:
        raise InputError(f"--batch must be at least 1, got {batch}")
    if max_frames is not None and max_frames < 1:
        raise InputError(f"--max-frames must be at least 1, got {max_frames}")
    dev = torch_device(device)
    net = load_restoration_model(default_model(task) if model is None else model).to(dev)
    landmarks = None
    if restorer_contract(net).landmarks:
        landmarks = load_landmarker(os.fspath(landmark_model or DEFAULT_LANDMARKER), dev)

    crop_size = restorer_contract(net).crop_size
    plan = plan_restoration(src, factor, all_faces, max_frames, progress, crop_size)
    info = probe(src)
    warn_if_short(info, plan.frames, "restored", max_frames)
    if (note := odd_size_note(info.width * factor, info.height * factor)) is not None:
        _note(note)
    if not plan.tracks:
        _note(f"no face found in {src}: every frame passes through unchanged")
    restorer = FaceRestorer(
        net, _audio_windows(src, plan.fps, plan.frames, net), landmarks, batch, dev
    )
    sound = read_audio(src, rate=None, mono=False)  # muxed as it is: native rate and channels
    captions = [f"input (bicubic x{factor})" if factor > 1 else "input", f"restored ({task})"]
    with contextlib.ExitStack() as stack:
        tmp = stack.enter_context(atomic_path(out))
        # The input's own matrix and range, stated in the output: colours are kept as they are.
        writer = stack.enter_context(
            VideoWriter(tmp, plan.fps, crf=CRF, audio=sound, colour=info.colour, exact_size=True)
        )
        if compare_path is not None:
            add_pair = stack.enter_context(
                comparison(compare_path, plan.fps, plan.frames, captions, sound, CRF)
            )
        pairs = restored_frames(src, plan, restorer, progress=progress)
        for t, (before, after) in enumerate(pairs):
            writer.write(after)
            if compare_path is not None:
                add_pair(t, before, after)
    active = np.logical_or.reduce([track.active for track in plan.tracks], initial=False)
    return RestoreSummary(
        output=out,
        frames=plan.frames,
        fps=plan.fps,
        restored_frames=int(np.count_nonzero(active)),
        tracks=len(plan.tracks),
        has_audio=sound is not None,
        seconds=time.perf_counter() - start,
    )
