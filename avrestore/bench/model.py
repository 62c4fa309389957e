"""CPU forward time of registered models: one window (batch 1) of their dummy inputs under
``torch.inference_mode``, median of repeats after one untimed warm-up call."""

from __future__ import annotations

import statistics
import time

import torch
from tqdm import tqdm

from avrestore.bench.report import rounded
from avrestore.models.complexity import measure as complexity
from avrestore.models.registry import build


def time_forward(name: str, size: int, repeats: int) -> dict[str, object]:
    """Median seconds of one forward call of model ``name`` on size² frames, and per
    restored frame, with its parameters and GMACs per frame."""
    model = build(name).eval()
    inputs = model.dummy_inputs(size, size)
    times = []
    with torch.inference_mode():
        for i in tqdm(range(repeats + 1), desc=f"model {name}", unit="call", disable=None):
            start = time.perf_counter()
            model(**inputs)
            if i:  # the first call warms up allocators and caches
                times.append(time.perf_counter() - start)
    median = statistics.median(times)
    cost = complexity(model, size)
    return {
        "model": name,
        "size": size,
        "params": cost.params,
        "gmacs_per_frame": round(cost.gmacs_per_frame, 3),
        "frames_in": cost.frames_in,
        "frames_out": cost.frames_out,
        "s_per_window": rounded(median),
        "s_per_frame": rounded(median / cost.frames_out),
        "times_s": [rounded(t) for t in times],
    }


def measure(models: list[str], size: int, repeats: int) -> list[dict]:
    """One row per model (``avrestore bench``'s entry point)."""
    return [time_forward(name, size, repeats) for name in models]
