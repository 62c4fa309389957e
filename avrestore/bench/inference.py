"""A restorer's inference settings, each against fp32 in one run: fp32, channels_last weights,
bf16 autocast, ONNX Runtime (``models.onnx_export``) and, on request, ``torch.compile``.

- ``measure_window``: one forward window of real inputs (``real_window``: what ``restore``
  gives the model for the first window of a real clip), on one thread: median CPU seconds,
  and the largest difference of the output from fp32's with its PSNR.
- ``measure_speakers``: the test speakers' prepared clips restored with each setting as
  ``avrestore evaluate --task car`` restores them: PSNR against the HQ crops, its difference
  from fp32's over all clips and the largest difference on one clip.

A setting this CPU or this torch cannot run (no bf16 kernel for a layer, no compiler) gives
its error in its row instead of figures. Nothing is asserted: the figures are reported.
"""

from __future__ import annotations

import copy
import statistics
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch
from torch import Tensor, nn
from tqdm import tqdm

from avrestore.bench.report import rounded
from avrestore.errors import InputError
from avrestore.evaluate.clips import load_clip
from avrestore.evaluate.landmarks import landmark_source
from avrestore.evaluate.methods import Network
from avrestore.evaluate.protocol import degradation_for
from avrestore.evaluate.sources import select_clips
from avrestore.faces.crop import crop_square
from avrestore.media.video import read_frames
from avrestore.models.contract import restorer_contract
from avrestore.models.landmarkers import DEFAULT_LANDMARKER, load_landmarker
from avrestore.models.onnx_export import OnnxRestorer
from avrestore.models.weights import resolve_model
from avrestore.quality import psnr, video_psnr
from avrestore.restore.crops import FaceRestorer
from avrestore.restore.runtime import Bf16Autocast, torch_threads
from avrestore.restore.stream import plan_restoration
from avrestore.restore.video import speech_windows

SETTINGS = ("fp32", "channels_last", "bf16", "onnx", "compile")
# compile is left out unless asked for: it takes minutes on a small CPU before its first call.
DEFAULT_SETTINGS = ("fp32", "channels_last", "bf16", "onnx")


def runners(net: nn.Module, names: Sequence[str], threads: int = 1) -> dict[str, nn.Module]:
    """A module per setting of ``names`` (of ``SETTINGS``; fp32 first, added if missing),
    each with ``net``'s contract and running it that way (ONNX Runtime on ``threads``)."""
    unknown = sorted(set(names) - set(SETTINGS))
    if unknown:
        raise InputError(f"unknown settings {', '.join(unknown)}; known: {', '.join(SETTINGS)}")
    make: dict[str, Callable[[], nn.Module]] = {
        "fp32": lambda: net,
        "channels_last": lambda: copy.deepcopy(net).to(memory_format=torch.channels_last),
        "bf16": lambda: Bf16Autocast(net),
        "onnx": lambda: OnnxRestorer(net, threads),
        "compile": lambda: torch.compile(net),
    }
    return {n: make[n]() for n in ["fp32", *(n for n in names if n != "fp32")]}


class _Recorder(nn.Module):
    """Runs a model and keeps the inputs of each call."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model, self.contract = model, restorer_contract(model)
        self.calls: list[dict[str, Tensor]] = []

    def forward(self, **inputs: Tensor) -> Tensor:
        """The model's output; the inputs are kept."""
        self.calls.append(inputs)
        return self.model(**inputs)


def real_window(
    model: nn.Module, clip: str | Path, landmarks: str = DEFAULT_LANDMARKER
) -> dict[str, Tensor]:
    """The inputs ``restore`` gives ``model`` for its first window of ``clip`` with real
    context on both sides: face crops, and the MFCC windows and landmarks it takes."""
    c = restorer_contract(model)
    plan = plan_restoration(clip, max_frames=c.frames_in, size=c.crop_size)
    if not plan.tracks or not plan.tracks[0].active.all():
        raise InputError(f"no face in each of the first {c.frames_in} frames of {clip}")
    frames = read_frames(clip, fps=plan.fps, max_frames=c.frames_in)[0]
    boxes = plan.tracks[0].boxes
    crops = np.stack([crop_square(f, boxes[t], c.crop_size)[0] for t, f in enumerate(frames)])
    recorder = _Recorder(model)
    marks = load_landmarker(landmarks) if c.landmarks else None
    audio = speech_windows(clip, plan.fps, plan.frames, model)
    ctx = (c.frames_in - c.frames_out) // 2
    FaceRestorer(recorder, audio, marks)(0, crops, (ctx, ctx))
    (inputs,) = recorder.calls
    return inputs


def _cpu_time(run: Callable[[], Tensor], repeats: int) -> tuple[float, Tensor]:
    """Median CPU seconds of ``run()`` over ``repeats`` calls after an untimed one (which
    may export or compile), and its output."""
    out = run()
    times = []
    for _ in range(repeats):
        start = time.process_time()
        run()
        times.append(time.process_time() - start)
    return statistics.median(times), out


def measure_window(
    clip: str, model: str, repeats: int, names: Sequence[str] = DEFAULT_SETTINGS
) -> list[dict]:
    """One row per setting of ``names``: ``model`` on ``clip``'s first real window on one
    thread, median CPU seconds per window and per restored frame, and the largest difference
    of the output (in [0, 1]) from fp32's with its PSNR."""
    net = resolve_model(model).eval()
    frames_out = restorer_contract(net).frames_out
    inputs = real_window(net, clip)
    rows: list[dict] = []
    reference = None
    with torch_threads(1), torch.inference_mode():
        for name, runner in runners(net, names).items():
            row: dict = {"model": model, "setting": name}
            try:
                seconds, out = _cpu_time(lambda r=runner: r(**inputs), repeats)
            except Exception as e:  # a setting this machine lacks: reported, not fatal
                rows.append({**row, "error": str(e).splitlines()[0][:160]})
                continue
            out = out.clamp(0, 1).numpy()
            reference = out if reference is None else reference
            row["cpu_s_per_window"] = rounded(seconds)
            row["cpu_s_per_frame"] = rounded(seconds / frames_out)
            row["max_abs_diff_vs_fp32"] = rounded(float(np.abs(out - reference).max()))
            row["psnr_vs_fp32_db"] = rounded(psnr(out, reference))
            rows.append(row)
    return rows


def measure_speakers(
    data: str,
    model: str,
    max_frames: int | None,
    names: Sequence[str] = DEFAULT_SETTINGS,
    level: int = 45,
) -> list[dict]:
    """One row per setting of ``names``: the test speakers' prepared clips of ``data``,
    compressed at CRF ``level`` as ``avrestore evaluate --task car`` does and restored by
    ``model`` run that way (landmarks, if it takes them, dlib's on the LQ crops): the PSNR
    against the HQ crops (frame-weighted mean of the clips' mean frame PSNR), its difference
    from fp32's, and the largest difference on one clip."""
    net = resolve_model(model).eval()
    marks = landmark_source(None, False, "cpu") if restorer_contract(net).landmarks else None
    settings = runners(net, names, torch.get_num_threads())
    methods = {n: Network(n, r, marks, 1, "cpu") for n, r in settings.items()}
    clips = select_clips(Path(data), "test", max_frames)
    degradation = degradation_for("car", level)
    scores: dict[str, list[float]] = {n: [] for n in methods}
    errors: dict[str, str] = {}
    frames: list[int] = []
    for folder in tqdm(clips.folders, "speakers", unit="clip", disable=None):
        clip = load_clip(folder, clips.cache, degradation, f"car-{level}", max_frames)
        frames.append(clip.frames)
        for name, method in methods.items():
            if name in errors:
                continue
            try:
                scores[name].append(video_psnr(method.restore(clip), clip.hq))
            except Exception as e:  # a setting this machine lacks: reported, not fatal
                errors[name] = str(e).splitlines()[0][:160]
    weights = np.asarray(frames, np.float64)
    rows = []
    for name in methods:
        row: dict = {"model": model, "setting": name, "clips": len(frames), "frames": sum(frames)}
        if name in errors:
            rows.append({**row, "error": errors[name]})
            continue
        diffs = np.asarray(scores[name]) - np.asarray(scores["fp32"])
        row["psnr_db"] = rounded(float(np.average(scores[name], weights=weights)), 6)
        row["diff_vs_fp32_db"] = rounded(float(np.average(diffs, weights=weights)))
        row["max_clip_diff_db"] = rounded(float(np.abs(diffs).max()))
        rows.append(row)
    return rows
