"""CPU forward time per restored frame of registered models (median of repeats).

    .venv/bin/python benchmarks/model_speed.py gavn-small gavn --size 224 --threads 2

Each model runs one window (batch 1) of its dummy inputs under ``torch.inference_mode``; one
untimed warm-up call precedes the timed ones. Prints one JSON line per model.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import torch

from avrestore.models.complexity import measure
from avrestore.models.registry import build


def time_forward(name: str, size: int, repeats: int) -> dict[str, object]:
    """Median seconds of one forward call of model ``name``, and per restored frame."""
    model = build(name).eval()
    inputs = model.dummy_inputs(size, size)
    times = []
    with torch.inference_mode():
        for i in range(repeats + 1):
            start = time.perf_counter()
            model(**inputs)
            if i:  # the first call warms up allocators and caches
                times.append(time.perf_counter() - start)
    median = statistics.median(times)
    cost = measure(model, size)
    return {
        "model": name,
        "size": size,
        "threads": torch.get_num_threads(),
        "params": cost.params,
        "gmacs_per_frame": round(cost.gmacs_per_frame, 3),
        "frames_in": cost.frames_in,
        "frames_out": cost.frames_out,
        "window_s": round(median, 4),
        "per_frame_s": round(median / cost.frames_out, 4),
        "times_s": [round(t, 4) for t in times],
    }


def main() -> None:
    """Parse the arguments and print one JSON line per model."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models", nargs="+")
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    for name in args.models:
        print(json.dumps(time_forward(name, args.size, args.repeats)), flush=True)


if __name__ == "__main__":
    main()
