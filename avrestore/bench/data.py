"""Samples per second a DataLoader of prepared clips delivers, per task and worker count,
and a tiny prepared folder made from one clip for machines that have none.

A task's caches (decoded frames, ``car``'s CRF 45 copies) are built first and timed apart,
as a first epoch pays for them once. Each (task, workers) pair then draws one untimed batch
(worker start-up) and times the next ``batches``.
"""

from __future__ import annotations

import time
from itertools import islice
from pathlib import Path

from torch.utils.data import DataLoader, RandomSampler
from tqdm import tqdm

from avrestore.bench.report import rounded
from avrestore.data.datasets import FaceWindowDataset
from avrestore.data.layouts import ClipSource
from avrestore.data.prepare import ClipPreparer, PrepareOptions


def tiny_prepared(root: Path, clip: Path, size: int, frames: int | None) -> Path:
    """Prepare ``clip`` (its first ``frames``, None: all) at ``size``² into ``root`` as a
    one-clip training split, as ``avrestore prepare`` lays a folder out."""
    out = root / "clips" / clip.stem
    out.mkdir(parents=True)
    preparer = ClipPreparer(PrepareOptions(size=size, max_frames=frames))
    preparer.prepare(ClipSource(clip.stem, clip, clip.stem, clip.stem), out)
    (root / "splits").mkdir()
    (root / "splits" / "train.txt").write_text(f"{clip.stem}\n")
    return root


def time_loader(
    dataset: FaceWindowDataset, batch: int, workers: int, batches: int, desc: str = "data"
) -> dict:
    """Samples per second over ``batches`` batches after one untimed batch (``desc`` names
    the progress bar)."""
    # Drawn with replacement, so that a small folder still gives every batch asked for in
    # one pass (a second pass would restart the workers inside the timing).
    sampler = RandomSampler(dataset, replacement=True, num_samples=batch * (batches + 1))
    loader = DataLoader(dataset, batch, sampler=sampler, num_workers=workers, drop_last=True)
    it = iter(loader)
    next(it)
    start = time.perf_counter()
    bar = tqdm(islice(it, batches), desc, batches, unit="batch", disable=None)
    n = sum(len(b["clip"]) for b in bar)
    seconds = time.perf_counter() - start
    return {"samples": n, "seconds": rounded(seconds), "samples_per_s": rounded(n / seconds)}


def measure(
    root: str,
    tasks: list[str],
    workers: list[int],
    batch: int,
    patch: int,
    batches: int,
    split: str = "train",
) -> list[dict]:
    """One row per (task, workers): samples per second, with the task's window count and
    cache-building seconds (``avrestore bench``'s entry point)."""
    rows = []
    for task in tasks:
        dataset = FaceWindowDataset(root, split, task, patch=patch)
        start = time.perf_counter()
        dataset.build_caches()
        cache = {"windows": len(dataset), "cache_build_s": rounded(time.perf_counter() - start)}
        for n in workers:
            speed = time_loader(dataset, batch, n, batches, f"data {task}, {n} workers")
            rows.append(
                {"task": task, "workers": n, "batch": batch, "patch": patch, **cache, **speed}
            )
    return rows
