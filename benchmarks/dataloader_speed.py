"""Samples per second a DataLoader of prepared clips delivers, per task and worker count.

    .venv/bin/python benchmarks/dataloader_speed.py /work/data/prepared224 --model gavn-small

The caches (decoded frames, the ``car`` task's CRF 45 copies) are built first and timed
apart, as a first epoch would pay for them once. Each (task, workers) pair then draws one
untimed batch (worker start-up) and times the next ``--batches``. With ``--model`` one
training step of that registered model (forward, L1 loss, backward, Adam) on a batch of the
same size is timed too (median of ``--repeats``): the loader keeps up when a batch takes less
time to load than a step to train. Prints one JSON line per measurement.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from itertools import islice

import torch
from torch.utils.data import DataLoader

from avrestore.data.datasets import FaceWindowDataset
from avrestore.data.tasks import TASKS
from avrestore.models.registry import build


def time_loader(dataset: FaceWindowDataset, batch: int, workers: int, batches: int) -> dict:
    """Samples per second over ``batches`` batches after one untimed batch."""
    loader = DataLoader(dataset, batch, shuffle=True, num_workers=workers, drop_last=True)
    it = iter(loader)
    next(it)
    start = time.perf_counter()
    n = sum(len(b["clip"]) for b in islice(it, batches))
    seconds = time.perf_counter() - start
    return {"samples": n, "seconds": round(seconds, 3), "samples_per_s": round(n / seconds, 2)}


def time_train_step(name: str, sample: dict, repeats: int) -> dict:
    """Median seconds of one training step of model ``name`` on the batch ``sample``."""
    model = build(name).train()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-4)
    times = []
    for i in range(repeats + 1):
        start = time.perf_counter()
        out = model(sample["lq"], sample["audio"], sample["landmarks"])
        loss = (out - sample["hq"]).abs().mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if i:  # the first step warms up allocators
            times.append(time.perf_counter() - start)
    return {"model": name, "step_s": round(statistics.median(times), 3)}


def main() -> None:
    """Parse the arguments and print one JSON line per measurement."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("root", help="a prepared folder (clips/, splits/)")
    parser.add_argument("--split", default="train")
    parser.add_argument("--tasks", nargs="+", default=list(TASKS), choices=list(TASKS))
    parser.add_argument("--workers", nargs="+", type=int, default=[0, 2])
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--patch", type=int, default=128)
    parser.add_argument("--batches", type=int, default=50)
    parser.add_argument("--model", help="also time a training step of this registered model")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    for task in args.tasks:
        dataset = FaceWindowDataset(args.root, args.split, task, patch=args.patch)
        start = time.perf_counter()
        dataset.build_caches()
        cache_s = round(time.perf_counter() - start, 2)
        print(json.dumps({"task": task, "windows": len(dataset), "cache_build_s": cache_s}))
        for workers in args.workers:
            speed = time_loader(dataset, args.batch, workers, args.batches)
            print(json.dumps({"task": task, "workers": workers, **speed}), flush=True)
    if args.model:
        dataset = FaceWindowDataset(args.root, args.split, args.tasks[0], patch=args.patch)
        sample = next(iter(DataLoader(dataset, args.batch, shuffle=True)))
        step = time_train_step(args.model, sample, args.repeats)
        print(json.dumps({**step, "batch": args.batch, "patch": args.patch}), flush=True)


if __name__ == "__main__":
    main()
