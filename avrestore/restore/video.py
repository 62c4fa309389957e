"""Restore the faces of a video file: the whole command behind ``avrestore restore``.

Checks every argument before the long work; finds and tracks the faces (pass 1), restores
and pastes them as the frames stream through (pass 2) and encodes H.264 at ``CRF`` with the
input's own audio (native rate and channels). The output appears whole or not at all.

A ``RestorePath`` (``restore.runtime``) chooses how: the model's runtime (PyTorch or ONNX
Runtime), decoding and encoding overlapped with the model in threads of their own, how often
faces are searched for, and how many frames are restored at a time; ``REALTIME`` takes every
lever at once. The summary gives the seconds of each stage (``restore.timing``) and each
frame's latency from its decoding to its encoding.

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
from collections.abc import Generator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from torch import nn

from avrestore.audio import AUDIO_RATE, audio_windows
from avrestore.errors import InputError
from avrestore.machine import keep_freed_memory
from avrestore.media.audio import Audio, read_audio
from avrestore.media.files import atomic_path, check_output, existing_file
from avrestore.media.video import (
    VideoInfo,
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
from avrestore.restore.overlap import in_background
from avrestore.restore.runtime import REFERENCE, RestorePath, model_runner, model_threads
from avrestore.restore.stream import DEPTH, RestorePlan, plan_restoration, restored_frames
from avrestore.restore.timing import StageClock

TASKS = ("car", "deblur", "sr")
DEFAULT_SCALE = 4  # the papers' usual super-resolution factor
CRF = 16  # visually transparent for the restored faces, and for the untouched rest

ModelArg = str | os.PathLike | nn.Module


@dataclass(frozen=True)
class RestoreSummary:
    """What a run did: frames written, how many had a face restored, face tracks, wall
    seconds and the CPU seconds of all its threads; the wall and CPU seconds of each stage
    (``restore.timing``) and the decode-to-encode latency of the frames (mean, min, max)."""

    output: Path
    frames: int
    fps: float
    restored_frames: int
    tracks: int
    has_audio: bool
    seconds: float
    cpu_seconds: float
    stages: dict[str, float]
    cpu_stages: dict[str, float]
    latency: dict[str, float]


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


def speech_windows(
    src: str | os.PathLike, fps: float, frames: int, model: nn.Module
) -> np.ndarray | None:
    """The MFCC windows ``model`` reads, of every frame of ``src`` (its speech at the rate the
    model takes); None without audio, or for a model without an audio branch."""
    a = restorer_contract(model).audio
    speech = read_audio(src, rate=AUDIO_RATE if a is None else a.rate, mono=True)
    if speech is None:
        _note(f"{src} has no audio track: restoring without audio; the output is silent")
        return None
    if a is None:
        return None
    return audio_windows(speech.mono, a.rate, frames, fps, a.window, a.n_mfcc)


def _write(
    pairs: Generator[tuple[np.ndarray, np.ndarray], None, None],
    out: Path,
    plan: RestorePlan,
    info: VideoInfo,
    sound: Audio | None,
    comparing: tuple[Path, list[str]] | None,
    clock: StageClock,
    overlap: bool,
) -> None:
    """Encode the restored frames of ``pairs`` (input, restored) into ``out`` with ``sound``
    as they come, and, with ``comparing`` (path, captions), input | restored; each frame is
    marked encoded on ``clock``, in a thread of its own with ``overlap``. The outputs appear
    whole or not at all."""
    with contextlib.ExitStack() as stack:
        tmp = stack.enter_context(atomic_path(out))
        # The input's own matrix and range, stated in the output: colours are kept as they are.
        writer = stack.enter_context(
            VideoWriter(tmp, plan.fps, crf=CRF, audio=sound, colour=info.colour, exact_size=True)
        )
        add_pair = None
        if comparing is not None:
            add_pair = stack.enter_context(
                comparison(comparing[0], plan.fps, plan.frames, comparing[1], sound, CRF)
            )

        def encode(item: tuple[int, np.ndarray, np.ndarray]) -> None:
            t, before, after = item
            with clock.stage("encode"):
                writer.write(after)
                if add_pair is not None:
                    add_pair(t, before, after)
            clock.encoded(t)

        submit = stack.enter_context(in_background(encode, DEPTH)) if overlap else encode
        # Closed on the way out whatever happens: a decoding thread stops with it.
        stack.enter_context(contextlib.closing(pairs))
        for t, (before, after) in enumerate(pairs):
            submit((t, before, after))
        with clock.stage("encode"):  # the frames still queued, the encoders' flush, the rename
            stack.close()


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
    path: RestorePath = REFERENCE,
    threads: int | None = None,
) -> RestoreSummary:
    """Restore the face (``all_faces``: every face) of ``input`` for ``task`` into ``output``.

    ``model`` defaults to the task's shipped checkpoint, ``landmark_model`` (used only by a
    model with a landmark branch) to ``dlib`` on the LQ crop; ``compare`` also writes input |
    restored as a PNG of the middle frame or, for a video suffix, a video. ``path``: how to
    run (``restore.runtime``: ``REFERENCE`` or ``REALTIME``); ``threads``: torch's and ONNX
    Runtime's threads for this run (default: torch's current setting); with ``REALTIME``
    (``parallel="windows"``) that many windows and face searches run at once, one thread each.
    """
    start, cpu_start = time.perf_counter(), time.process_time()
    clock = StageClock()
    with model_threads(path, threads) as workers:
        with clock.stage("setup"):
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
            path.check(dev)
            if path.keep_memory:
                keep_freed_memory()
            net = load_restoration_model(default_model(task) if model is None else model).to(dev)
            landmarks = None
            if restorer_contract(net).landmarks:
                landmarks = load_landmarker(os.fspath(landmark_model or DEFAULT_LANDMARKER), dev)

        crop_size = restorer_contract(net).crop_size
        plan = plan_restoration(
            src, factor, all_faces, max_frames, progress, crop_size, path.detect_every, clock,
            workers,
        )  # fmt: skip
        with clock.stage("setup"):
            info = probe(src)
            warn_if_short(info, plan.frames, "restored", max_frames)
            if (note := odd_size_note(info.width * factor, info.height * factor)) is not None:
                _note(note)
            if not plan.tracks:
                _note(f"no face found in {src}: every frame passes through unchanged")
        with clock.stage("audio"):
            windows = speech_windows(src, plan.fps, plan.frames, net)
            sound = read_audio(src, rate=None, mono=False)  # muxed as it is: native rate, channels
        with clock.stage("setup"):  # no face, no model to run: nothing to export or time
            runner = model_runner(net, path.runtime, windows is not None) if plan.tracks else net
        restorer = FaceRestorer(runner, windows, landmarks, batch, dev, clock, workers)
        captions = [f"input (bicubic x{factor})" if factor > 1 else "input", f"restored ({task})"]
        pairs = restored_frames(src, plan, restorer, path.block, progress, path.overlap)
        comparing = None if compare_path is None else (compare_path, captions)
        _write(pairs, out, plan, info, sound, comparing, clock, path.overlap)
    active = np.logical_or.reduce([track.active for track in plan.tracks], initial=False)
    return RestoreSummary(
        output=out,
        frames=plan.frames,
        fps=plan.fps,
        restored_frames=int(np.count_nonzero(active)),
        tracks=len(plan.tracks),
        has_audio=sound is not None,
        seconds=time.perf_counter() - start,
        cpu_seconds=time.process_time() - cpu_start,
        stages=dict(clock.seconds),
        cpu_stages=dict(clock.cpu_seconds),
        latency=clock.latency(),
    )
