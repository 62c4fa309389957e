"""Restore in real time on a CPU: each lever of a whole restore measured against the reference
path in one run, with what it does to the output.

``measure_levers``: whole restores (``restore_video``, the ``car`` task) of a clip (the GRID
sample: 360x288, a 224² face) compressed at CRF 40 and looped, one per lever: threads (sharing
each window's operations, or each restoring windows of its own), batch, ONNX Runtime, bf16
autocast, decoding and encoding overlapped with the model, detection every k-th frame, block
length, and ``--realtime``, which combines them. A row: wall seconds and frames
per second of the whole restore, those of pass 2 alone (the stages after the setup: what a longer
video converges to), the CPU seconds per frame of all the process's threads and of the model
stage, the latency from a frame's decoding to its encoding, and the face's PSNR against the
original clip, its difference from the reference's, and the PSNR of the output against the
reference's. The model's own inference settings (bf16, channels_last, ...) are
``bench.inference``'s.

CPU seconds are given beside wall seconds because on a machine whose cores other jobs keep
busy the wall time grows with their load, while a single-threaded run's CPU time stays near
what a quiet machine's wall clock would read. Nothing is asserted: the figures are reported.
"""

from __future__ import annotations

import json
import math
import multiprocessing
import sys
import tempfile
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from avrestore.bench.report import rounded
from avrestore.bench.restore import loop_clip
from avrestore.errors import InputError
from avrestore.media.video import probe, read_frames
from avrestore.models.landmarkers import DEFAULT_LANDMARKER
from avrestore.quality import psnr
from avrestore.restore.runtime import REALTIME, REFERENCE, RestorePath
from avrestore.restore.stream import plan_restoration
from avrestore.restore.video import RestoreSummary, restore_video


@dataclass(frozen=True)
class Lever:
    """One way to run ``restore``: its path, torch (and ONNX Runtime) threads and batch."""

    label: str
    path: RestorePath = REFERENCE
    threads: int = 1
    batch: int = 1


ONNX = RestorePath(runtime="onnx")
BF16 = RestorePath(runtime="bf16")
BF16_WINDOWS = RestorePath(runtime="bf16", parallel="windows")
LEVERS = {
    "reference": Lever("PyTorch fp32, 1 thread (reference)"),
    "threads2": Lever("2 threads", threads=2),
    "batch2": Lever("batch of 2 windows", batch=2),
    "onnx": Lever("ONNX Runtime", ONNX),
    "onnx-threads2": Lever("ONNX Runtime, 2 threads", ONNX, threads=2),
    "bf16": Lever("PyTorch bf16 autocast", BF16),
    "bf16-threads2": Lever("PyTorch bf16 autocast, 2 threads", BF16, threads=2),
    "windows2": Lever(
        "2 windows at once, 1 thread each", RestorePath(parallel="windows"), threads=2
    ),
    "bf16-windows2": Lever(
        "PyTorch bf16 autocast, 2 windows at once, 1 thread each", BF16_WINDOWS, threads=2
    ),
    "overlap": Lever("decode and encode in threads", RestorePath(overlap=True)),
    "keep-memory": Lever("freed memory kept for reuse", RestorePath(keep_memory=True)),
    "detect5": Lever("faces searched every 5th frame", RestorePath(detect_every=5)),
    "detect10": Lever("faces searched every 10th frame", RestorePath(detect_every=10)),
    "block12": Lever("blocks of 12 frames", RestorePath(block=12)),
    "realtime": Lever("--realtime", REALTIME),
    "realtime-threads2": Lever("--realtime, 2 threads", REALTIME, threads=2),
}


def face_psnr(frames: np.ndarray, original: np.ndarray, boxes: np.ndarray) -> float:
    """PSNR (dB) of the pixels inside each frame's crop box (clipped to the frame), all
    frames' pixels pooled into one mean squared error."""
    restored, reference = [], []
    for frame, ref, box in zip(frames, original, boxes, strict=True):
        x0, y0, x1, y1 = np.clip(np.round(box), 0, None).astype(int)
        restored.append(frame[y0:y1, x0:x1].ravel())
        reference.append(ref[y0:y1, x0:x1].ravel())
    return psnr(np.concatenate(restored), np.concatenate(reference))


def measure_levers(
    clip: str, model: str, names: list[str], seconds: float, landmarks: str = DEFAULT_LANDMARKER
) -> list[dict]:
    """One row per lever of ``names`` (keys of ``LEVERS``): ``model`` restoring ``clip``
    looped to ``seconds`` at CRF 40, each in a fresh process. The reference runs first whether
    named or not, and again last (``reference-again``), so that a load that changed during
    the run shows as two different references."""
    unknown = sorted(set(names) - set(LEVERS))
    if unknown:
        raise InputError(f"unknown levers {', '.join(unknown)}; known: {', '.join(LEVERS)}")
    names = ["reference", *(n for n in names if n != "reference"), "reference"]
    with tempfile.TemporaryDirectory(prefix="avrestore-realtime-") as tmp:
        work = Path(tmp)
        video = loop_clip(Path(clip), seconds, work / "input.mp4")
        total = probe(video).frame_count
        original = read_frames(clip, fps=probe(clip).fps)[0]
        original = original[np.arange(total) % len(original)]  # looped as ``loop_clip`` loops
        boxes = plan_restoration(video).tracks[0].boxes
        rows: list[dict] = []
        for i, name in enumerate(names):
            lever = LEVERS[name]
            key = f"{name}-again" if i and name == "reference" else name
            out = work / f"{key}.mp4"
            summary = _in_fresh_process(video, out, model, landmarks, lever)
            restored = read_frames(out)[0]
            row = _lever_row(key, lever, summary, face_psnr(restored, original, boxes))
            if rows:  # compared with the reference, the first row
                ref = rows[0]["face_psnr_db"]
                row["psnr_diff_vs_reference_db"] = rounded(row["face_psnr_db"] - ref)
                same = psnr(restored, read_frames(work / "reference.mp4")[0])
                # None: the output is the reference's bit for bit (an infinite PSNR).
                row["psnr_vs_reference_output_db"] = None if math.isinf(same) else rounded(same)
            rows.append(row)
            # On stderr as it comes: a long run cut short keeps its rows.
            tqdm.write(json.dumps(row), file=sys.stderr)
    return rows


def _restore_warm(
    video: Path, out: Path, model: str, landmarks: str, lever: Lever
) -> RestoreSummary:
    """``lever``'s restore of ``video``, after an untimed one of 7 frames: the first restore in
    a process loads libraries and kernels, and an ONNX runtime's first run exports the model
    into the cache (``auto`` also times the runtimes)."""
    for frames, path in ((7, out.with_name("warm.mp4")), (None, out)):
        summary = restore_video(
            video, path, "car", model, landmarks, batch=lever.batch, max_frames=frames,
            path=lever.path, threads=lever.threads,
        )  # fmt: skip
    return summary


def _in_fresh_process(
    video: Path, out: Path, model: str, landmarks: str, lever: Lever
) -> RestoreSummary:
    """``_restore_warm`` in a process of its own, as a user's command runs: what a lever
    leaves behind in its process (kept memory, threads, caches) cannot speed up the next."""
    spawn = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(1, mp_context=spawn) as pool:
        return pool.submit(_restore_warm, video, out, model, landmarks, lever).result()


def _lever_row(name: str, lever: Lever, summary: RestoreSummary, face: float) -> dict:
    """A lever's figures (see the module docstring) from its restore's summary."""
    n = summary.frames
    steady = summary.seconds - summary.stages["setup"]
    return {
        "lever": name,
        "label": lever.label if name in LEVERS else f"{lever.label}, run again last",
        "threads": lever.threads,
        "frames": n,
        "seconds": rounded(summary.seconds),
        "fps": rounded(n / summary.seconds),
        "setup_s": rounded(summary.stages["setup"]),
        "steady_fps": rounded(n / steady),
        "cpu_s_per_frame": rounded(summary.cpu_seconds / n),
        "model_cpu_s_per_frame": rounded(summary.cpu_stages["model"] / n),
        "latency_mean_s": rounded(summary.latency["mean"]),
        "latency_max_s": rounded(summary.latency["max"]),
        "face_psnr_db": rounded(face, 5),
    }
