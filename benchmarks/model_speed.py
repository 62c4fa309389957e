"""CPU forward time per restored frame of registered models (median of repeats).

    .venv/bin/python benchmarks/model_speed.py gavn-small gavn --size 224 --threads 2

Each model runs one window (batch 1) of its dummy inputs under ``torch.inference_mode``; one
untimed warm-up call precedes the timed ones (``avrestore.bench.model``, which
``avrestore bench`` runs too). Prints one JSON line per model.
"""

from __future__ import annotations

import argparse
import json

import torch

from avrestore.bench.model import time_forward


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
        row = time_forward(name, args.size, args.repeats)
        print(json.dumps({**row, "threads": args.threads}), flush=True)


if __name__ == "__main__":
    main()
