"""Samples per second a DataLoader of prepared clips delivers, per task and worker count.

    .venv/bin/python benchmarks/dataloader_speed.py /work/data/prepared224 --model gavn-small

Measured by ``avrestore.bench.data`` (which ``avrestore bench`` runs too): each task's caches
are built first and timed apart, then each (task, workers) pair draws one untimed batch and
times the next ``--batches``. With ``--model`` one training step of that registered model
(``avrestore.bench.train_step``: forward, Charbonnier loss, backward, Adam) on a loader batch of
the same size is timed too (median of ``--repeats``): the loader keeps up when a batch takes
less time to load than a step to train. Prints one JSON line per measurement.
"""

from __future__ import annotations

import argparse
import json

import torch
from torch.utils.data import DataLoader

from avrestore.bench.data import measure
from avrestore.bench.train_step import Setting, train_steps
from avrestore.data.datasets import FaceWindowDataset
from avrestore.data.tasks import TASKS


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
        rows = measure(
            args.root, [task], args.workers, args.batch, args.patch, args.batches, args.split
        )
        for row in rows:
            print(json.dumps(row), flush=True)
    if args.model:
        dataset = FaceWindowDataset(args.root, args.split, args.tasks[0], patch=args.patch)
        sample = next(iter(DataLoader(dataset, args.batch, shuffle=True)))
        step = train_steps(Setting(args.patch), [sample] * (args.repeats + 1), args.model, 1)
        row = {"model": args.model, "s_per_step": step["s_per_step"]}
        print(json.dumps({**row, "batch": args.batch, "patch": args.patch}), flush=True)


if __name__ == "__main__":
    main()
