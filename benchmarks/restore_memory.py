"""Peak memory and speed of ``avrestore restore`` on a short and a long video.

    .venv/bin/python benchmarks/restore_memory.py --model gavn-small --seconds 10 120 --threads 2

The videos loop a real clip (its frames and its audio, written with PyAV) and are compressed
at CRF 40, as input to the ``car`` task. Each restore runs in a fresh child process
(``avrestore.bench.runner``, as ``avrestore bench`` runs it), so that runs cannot inflate
each other's figures; it reports its peak resident memory (``ru_maxrss``), the highest
resident memory read in each half of its run (with flat memory the second half's is no
higher than the first's) and its wall time. An untrained model of the registered name (and an
untrained ``landmark-net``) stands in for trained weights: the cost is the same. Prints one
JSON line per video.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

from avrestore.bench.restore import loop_clip, save_untrained
from avrestore.bench.runner import run_child
from avrestore.samples import sample_path


def main() -> None:
    """Make each video, restore it in a child process, print the child's figures."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--clip", type=Path, help="Real clip to loop (default: the sample).")
    parser.add_argument("--model", default="gavn-small", help="Registered model name.")
    parser.add_argument("--seconds", type=float, nargs="+", default=[10, 120])
    parser.add_argument("--threads", type=int, default=2, help="torch threads in the child.")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        weights, landmarks = save_untrained(args.model, folder)
        for seconds in args.seconds:
            video = loop_clip(
                args.clip or sample_path(), seconds, folder / f"loop_{seconds:g}s.mp4"
            )
            params = {"video": str(video), "weights": str(weights), "landmarks": str(landmarks)}
            result = run_child("restore", params, args.threads)
            if "error" in result:
                raise SystemExit(f"restore of the {seconds:g} s video failed: {result['error']}")
            (row,) = result["rows"]
            memory = {"peak_rss_mib": result["peak_rss_mib"], "threads": result["torch_threads"]}
            print(json.dumps({"model": args.model, **row, **memory}), flush=True)


if __name__ == "__main__":
    main()
