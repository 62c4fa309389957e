"""Speed and memory of ``avrestore restore``: a real clip looped to a given length (frames
and audio, CRF 40, as input to the ``car`` task), restored by untrained models of the
registered names (the cost of trained weights is the same) with the face restored in every
frame. ``measure`` runs in a fresh process (``avrestore.bench.runner``), which reads its peak
RSS; here the resident memory is also sampled, so that flat memory shows as a second half of
the run that peaks no higher than the first. The row also gives the seconds of each stage of
the restore (``avrestore.restore.timing``: wall and CPU), the wall time no stage covers, and
the latency from a frame's decoding to its encoding."""

from __future__ import annotations

import os
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

from avrestore.bench.report import rounded
from avrestore.media.audio import Audio, read_audio
from avrestore.media.video import VideoWriter, probe, read_frames
from avrestore.models.registry import build
from avrestore.models.weights import save_model
from avrestore.restore.timing import STAGES
from avrestore.restore.video import RestoreSummary, restore_video


def loop_clip(clip: Path, seconds: float, out: Path) -> Path:
    """Write ``clip`` repeated (or cut) to ``seconds`` long, audio included, at CRF 40."""
    fps = probe(clip).fps
    frames, _ = read_frames(clip, fps=fps)
    audio = read_audio(clip, rate=None, mono=False)
    total = round(seconds * fps)
    if audio is not None:
        needed = round(seconds * audio.rate)
        repeats = -(-needed // audio.samples.shape[1])
        audio = Audio(np.tile(audio.samples, (1, repeats))[:, :needed], audio.rate)
    with VideoWriter(out, fps, crf=40, audio=audio) as writer:
        for start in range(0, total, len(frames)):
            writer.write(frames[: total - start])
    return out


def save_untrained(name: str, folder: Path) -> tuple[Path, Path]:
    """Weights files of an untrained ``name`` and an untrained ``landmark-net``."""
    paths = folder / f"{name}.safetensors", folder / "landmark-net.safetensors"
    save_model(build(name), paths[0], {"type": name})
    save_model(build("landmark-net"), paths[1], {"type": "landmark-net"})
    return paths


class RssSampler(threading.Thread):
    """Reads this process's resident memory every 20 ms, with the time of each reading."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.samples: list[tuple[float, float]] = []
        self.done = threading.Event()

    def run(self) -> None:
        """Sample until ``done`` is set."""
        page_mib = os.sysconf("SC_PAGE_SIZE") / 2**20
        with open("/proc/self/statm") as statm:
            while not self.done.wait(0.02):
                statm.seek(0)
                self.samples.append((time.perf_counter(), int(statm.read().split()[1]) * page_mib))

    def peak_between(self, start: float, stop: float) -> float:
        """The highest reading taken from ``start`` to ``stop``."""
        return max((rss for t, rss in self.samples if start <= t <= stop), default=0.0)


def stage_figures(summary: RestoreSummary) -> dict:
    """A restore's stages for a report: wall and CPU seconds per stage, the wall seconds no
    stage covers (negative where stages overlapped in threads) and the decode-to-encode
    latency of its frames (mean, min, max seconds)."""
    return {
        "stages_s": {name: rounded(summary.stages[name]) for name in STAGES},
        "stages_cpu_s": {name: rounded(summary.cpu_stages[name]) for name in STAGES},
        "unstaged_s": rounded(summary.seconds - sum(summary.stages.values())),
        "latency_s": {k: rounded(v) for k, v in summary.latency.items()},
    }


def measure(video: str, weights: str, landmarks: str, task: str = "car") -> list[dict]:
    """Restore ``video`` with the model file ``weights`` in this process: one row of frames,
    seconds (per frame), the highest RSS read in each half of the run, and the seconds of
    each stage (``stage_figures``)."""
    sampler = RssSampler()
    sampler.start()
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "restored.mp4"
        summary = restore_video(
            video, out, task, model=weights, landmark_model=landmarks, progress=True
        )
    end = time.perf_counter()
    sampler.done.set()
    sampler.join()
    middle = (start + end) / 2
    return [
        {
            "task": task,
            "video_s": rounded(summary.frames / summary.fps),
            "frames": summary.frames,
            "restored_frames": summary.restored_frames,
            "seconds": round(end - start, 2),
            "s_per_frame": rounded((end - start) / summary.frames),
            "first_half_peak_mib": round(sampler.peak_between(start, middle), 1),
            "second_half_peak_mib": round(sampler.peak_between(middle, end), 1),
            "cpu_s_per_frame": rounded(summary.cpu_seconds / summary.frames),
            **stage_figures(summary),
        }
    ]
