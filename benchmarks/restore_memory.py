"""Peak memory and speed of ``avrestore restore`` on a short and a long video.

    .venv/bin/python benchmarks/restore_memory.py --model gavn-small --seconds 10 120 --threads 2

The videos loop a real clip (its frames and its audio, written with PyAV) and are compressed
at CRF 40, as input to the ``car`` task. Each restore runs in a fresh child process, so that
runs cannot inflate each other's figures; it reports its peak resident memory
(``ru_maxrss``), the highest resident memory read in each half of its run (with flat memory
the second half's is no higher than the first's) and its wall time. An untrained model of
the registered name (and an untrained ``landmark-net``) stands in for trained weights: the
cost is the same. Prints one JSON line per video.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
CLIP = REPO.parent / "shared" / "data" / "talking_heads" / "grid_bbaf2n.mpg"


def loop_clip(clip: Path, seconds: float, out: Path) -> Path:
    """Write ``clip`` repeated to ``seconds`` long, audio included, at CRF 40."""
    from avrestore.media.audio import Audio, read_audio
    from avrestore.media.video import VideoWriter, probe, read_frames

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
    from avrestore.models.registry import build
    from avrestore.models.weights import save_model

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
        page_mib = os.sysconf("SC_PAGE_SIZE") / 2**20
        with open("/proc/self/statm") as statm:
            while not self.done.wait(0.02):
                statm.seek(0)
                self.samples.append((time.perf_counter(), int(statm.read().split()[1]) * page_mib))

    def peak_between(self, start: float, stop: float) -> float:
        """The highest reading taken from ``start`` to ``stop``."""
        return max((rss for t, rss in self.samples if start <= t <= stop), default=0.0)


def child(video: str, model: str, landmarks: str, threads: int) -> None:
    """Restore ``video`` in this process; print frames, time and memory as JSON: the peak
    RSS of the whole run (``ru_maxrss``) and the highest RSS read in each half of it."""
    import torch

    from avrestore.restore.video import restore_video

    torch.set_num_threads(threads)
    sampler = RssSampler()
    sampler.start()
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        summary = restore_video(video, Path(tmp) / "restored.mp4", "car", model, landmarks)
    end = time.perf_counter()
    sampler.done.set()
    sampler.join()
    middle = (start + end) / 2
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    print(
        json.dumps(
            {
                "frames": summary.frames,
                "restored_frames": summary.restored_frames,
                "seconds": round(end - start, 1),
                "seconds_per_frame": round((end - start) / summary.frames, 4),
                "peak_rss_mib": round(peak_kib / 1024, 1),
                "first_half_peak_mib": round(sampler.peak_between(start, middle), 1),
                "second_half_peak_mib": round(sampler.peak_between(middle, end), 1),
            }
        )
    )


def main() -> None:
    """Make each video, restore it in a child process, print the child's figures."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--clip", type=Path, default=CLIP, help="Real clip to loop.")
    parser.add_argument("--model", default="gavn-small", help="Registered model name.")
    parser.add_argument("--seconds", type=float, nargs="+", default=[10, 120])
    parser.add_argument("--threads", type=int, default=2, help="torch threads in the child.")
    parser.add_argument("--child", nargs=4, metavar=("VIDEO", "MODEL", "LANDMARKS", "THREADS"))
    args = parser.parse_args()
    if args.child:
        video, model, landmarks, threads = args.child
        child(video, model, landmarks, int(threads))
        return
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        model, landmarks = save_untrained(args.model, folder)
        for seconds in args.seconds:
            video = loop_clip(args.clip, seconds, folder / f"loop_{seconds:g}s.mp4")
            command = [sys.executable, __file__, "--child", str(video), str(model)]
            run = subprocess.run(
                [*command, str(landmarks), str(args.threads)],
                capture_output=True,
                text=True,
                check=True,
            )
            result = json.loads(run.stdout.strip().splitlines()[-1])
            print(json.dumps({"model": args.model, "video_seconds": seconds, **result}), flush=True)


if __name__ == "__main__":
    main()
