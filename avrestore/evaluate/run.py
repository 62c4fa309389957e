"""The evaluation loop: every method restores the same cached degraded clips, and every
restored frame is scored against its HQ crop."""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from avrestore.data.datasets import read_clip
from avrestore.errors import InputError
from avrestore.evaluate.clips import EvalClip, load_clip
from avrestore.evaluate.methods import Method, Network, build_methods
from avrestore.evaluate.protocol import degradation_for
from avrestore.evaluate.scores import FrameWeightedMeans
from avrestore.evaluate.sources import select_clips
from avrestore.media.files import existing_file
from avrestore.metrics.clip import ClipScorer, MetricResources
from avrestore.models.device import torch_device
from avrestore.quality import psnr


@dataclass(frozen=True)
class PreviewFrame:
    """One method's output of the preview frame (the first clip's middle frame), its PSNR."""

    label: str
    frame: np.ndarray
    psnr: float


@dataclass(frozen=True)
class Evaluation:
    """The JSON-ready ``results``, and the preview frame of each method and of the HQ clip."""

    results: dict
    preview: list[PreviewFrame]
    hq: np.ndarray


def evaluate(
    data: str | os.PathLike,
    task: str,
    level: int,
    models: Sequence[str],
    *,
    split: str | None = None,
    max_frames: int | None = None,
    resources: MetricResources | None = None,
    every: int = 1,
    landmark_model: str | None = None,
    teacher_landmarks: bool = False,
    cache: str | os.PathLike | None = None,
    batch: int = 1,
    device: str | torch.device = "cpu",
    compress_at: str = "crop",
) -> Evaluation:
    """Degrade the clips of ``data`` for ``task`` at ``level``, restore them with each of
    ``models`` and score them (see ``avrestore evaluate --help`` for the arguments).

    What a user can get wrong (task, level, numbers, models, weight files, clips) is checked
    before the first clip is prepared or degraded.
    """
    degradation = degradation_for(task, level)
    if compress_at not in ("crop", "source") or (compress_at == "source" and task != "car"):
        raise InputError(f"--compress-at is crop, or source for car; got {compress_at!r}")
    for option, value in (("--max-frames", max_frames), ("--every", every)):
        if value is not None and value < 1:
            raise InputError(f"{option} must be at least 1, got {value}")
    downscales = degradation.downscale is not None
    device = torch_device(device)
    methods = build_methods(models, downscales, landmark_model, teacher_landmarks, batch, device)
    _check_resources(resources)
    clip_set = select_clips(Path(data), split, max_frames, None if cache is None else Path(cache))
    qp = any(isinstance(m, Network) and m.reads_qp for m in methods)
    scorer = ClipScorer(resources, every)
    tally = _Tally(methods)
    total = sum(_evaluated_frames(f, max_frames) for f in clip_set.folders) * len(methods)
    # disable=None: a bar (rate, ETA) on an interactive stderr, silence in logs and pipes.
    with tqdm(total=total, unit="frame", desc="evaluate", disable=None) as bar:
        for folder in clip_set.folders:
            clip = load_clip(
                folder,
                clip_set.cache,
                degradation,
                f"{task}-{level}",
                max_frames,
                at_source=compress_at == "source",
                qp=qp,
            )
            for method in methods:
                bar.set_postfix_str(f"{clip.clip_id[:24]} {method.label[:16]}")
                start = time.perf_counter()
                restored = method.restore(clip)
                seconds = time.perf_counter() - start
                scores = scorer.score(
                    restored, clip.hq, clip.teacher_landmarks, clip.frames_audio, clip.fps
                )
                tally.add(
                    method.label, clip, restored, {**scores, "seconds": seconds / clip.frames}
                )
                bar.update(clip.frames)
            tally.clip_done(clip)
    sources = {m.landmarks.label for m in methods if isinstance(m, Network) and m.landmarks}
    results = {
        "task": task,
        "level": level,
        "degradation": str(degradation),
        "compress_at": compress_at,
        "data": str(data),
        "clips": len(tally.clip_ids),
        "frames": tally.frames,
        "clip_ids": tally.clip_ids,
        "rejected": clip_set.rejected,
        "landmarks": sources.pop() if sources else None,
        "every": every,
        "models": {label: m.means() for label, m in tally.means.items()},
    }
    return Evaluation(results, tally.preview, tally.hq_preview)


class _Tally:
    """What the loop gathers: each method's means, the evaluated clips and frames, and the
    preview (the middle frame of the first clip)."""

    def __init__(self, methods: Sequence[Method]) -> None:
        self.means = {m.label: FrameWeightedMeans() for m in methods}
        self.clip_ids: list[str] = []
        self.frames = 0
        self.preview: list[PreviewFrame] = []
        self.hq_preview = np.zeros((0, 0, 3), np.uint8)

    def add(self, label: str, clip: EvalClip, restored: np.ndarray, scores: dict) -> None:
        """Count one method's scores on ``clip``; keep its preview frame from the first clip."""
        self.means[label].add(scores, clip.frames)
        if not self.clip_ids:
            mid = clip.frames // 2
            frame = restored[mid]
            self.preview.append(PreviewFrame(label, frame, psnr(frame, clip.hq[mid])))

    def clip_done(self, clip: EvalClip) -> None:
        """Every method has scored ``clip``."""
        if not self.clip_ids:
            self.hq_preview = clip.hq[clip.frames // 2]
        self.clip_ids.append(clip.clip_id)
        self.frames += clip.frames


def _check_resources(resources: MetricResources | None) -> None:
    """Fail on a missing metric file before clips are prepared, not after."""
    if resources is not None:
        for path in (resources.niqe_params, *(resources.lpips_paths or ()), resources.syncnet_path):
            if path is not None:
                existing_file(path)


def _evaluated_frames(folder: Path, max_frames: int | None) -> int:
    frames = read_clip(folder).frames
    return frames if max_frames is None else min(frames, max_frames)
