"""Seconds per training step of a GAVN spec under the levers this CPU has, with numerics
checked against fp32.

    .venv/bin/python benchmarks/train_speed.py data/prepared224 --steps 12 --threads 1

Each setting below trains a fresh model on the same real batches for ``--steps`` steps, as
``avrestore.bench.train_step`` describes (``avrestore bench`` runs its fp32/bf16 subset):
the median seconds per step after the first two, and the mean absolute difference of the
loss curve from the fp32 run with the same patch and branches. Settings that raise on this
CPU are reported with their error. One JSON line per setting.
"""

from __future__ import annotations

import argparse
import json

import torch

from avrestore.bench.train_step import Setting, compare

SETTINGS = (
    Setting(96),
    Setting(96, "bf16"),
    Setting(96, use_audio=False),
    Setting(96, "bf16", use_audio=False),
    Setting(96, channels_last=True),
    Setting(80),
    Setting(64),
)


def main() -> None:
    """Run every setting and print one JSON line each."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("root", help="a prepared folder (avrestore prepare)")
    ap.add_argument("--model", default="gavn-small")
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--steps", type=int, default=12)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    for row in compare(SETTINGS, args.root, args.model, args.batch, args.steps):
        print(json.dumps({**row, "threads": args.threads}), flush=True)


if __name__ == "__main__":
    main()
