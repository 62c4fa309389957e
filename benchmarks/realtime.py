"""Restore in real time on a CPU: the levers and inference settings, each measured against the
reference in one run.

    .venv/bin/python benchmarks/realtime.py all --data data/prepared224 --json realtime.json
    .venv/bin/python benchmarks/realtime.py levers --model dbpn-small-car --levers onnx,realtime
    .venv/bin/python benchmarks/realtime.py window --model gavn-small-car --settings fp32,onnx
    .venv/bin/python benchmarks/realtime.py speakers --data data/prepared224

``levers`` restores the GRID sample (``avrestore.samples``: 360x288, a 224² face) compressed
at CRF 40 and looped to ``--seconds``, once per lever, after the reference (PyTorch fp32 on
one thread; ``avrestore.bench.realtime``); ``window`` times one real forward window per
inference setting (fp32, channels_last, bf16 autocast, ONNX Runtime; ``compile`` on request)
and ``speakers`` restores the test speakers' clips of a prepared folder with each setting
(``avrestore.bench.inference``). ``all`` runs the three for each model of ``--models``
(``speakers`` only with ``--data``). Each prints a markdown table per measurement;
``--json PATH`` also writes every row. Run it with nothing else busy on the CPU: each lever
sets its own threads (1 or 2), ``window`` runs on one, ``speakers`` on torch's default. bf16
autocast is emulated on a CPU without AVX-512 BF16, and slow: leave it out of ``--settings``
there to save time.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from pathlib import Path

from avrestore.bench.inference import DEFAULT_SETTINGS, measure_speakers, measure_window
from avrestore.bench.realtime import LEVERS, measure_levers
from avrestore.errors import InputError
from avrestore.media.files import atomic_path
from avrestore.samples import sample_path

MODELS = ("gavn-small-car", "dbpn-small-car")  # the default model, and the lightest shipped


def _cell(value: object) -> str:
    if value is None:  # a PSNR against the reference's output that is infinite
        return "identical"
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def markdown(rows: list[dict]) -> str:
    """The rows as a markdown table, one column per key (of all rows, in order)."""
    keys = list(dict.fromkeys(k for row in rows for k in row))
    lines = ["| " + " | ".join(keys) + " |", "|" + " --- |" * len(keys)]
    lines += ["| " + " | ".join(_cell(row.get(k, "-")) for k in keys) + " |" for row in rows]
    return "\n".join(lines)


def _measurements(args: argparse.Namespace) -> dict[str, list[dict]]:
    """The measurements asked for, by title: each one's rows, printed as each is done."""
    clip = str(args.clip or sample_path())
    settings = args.settings.split(",")
    plan: list[tuple[str, Callable[..., list[dict]], tuple]] = []
    for model in args.models.split(",") if args.what == "all" else [args.model]:
        if args.what in ("levers", "all"):
            plan.append(
                ("levers", measure_levers, (clip, model, args.levers.split(","), args.seconds))
            )
        if args.what in ("window", "all"):
            plan.append(("window", measure_window, (clip, model, args.repeats, settings)))
        if args.what == "speakers" or (args.what == "all" and args.data):
            plan.append(
                ("speakers", measure_speakers, (args.data, model, args.max_frames, settings))
            )
    results = {}
    for what, measure, arguments in plan:
        title = f"{what}, {arguments[1]}"
        results[title] = measure(*arguments)
        print(f"\n### {title}\n\n{markdown(results[title])}", flush=True)
    return results


def main() -> None:
    """Run the measurements, print their tables, write their rows as JSON if asked."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("what", choices=["all", "levers", "window", "speakers"])
    parser.add_argument("--model", default=MODELS[0], help="Shipped name or weights.")
    parser.add_argument("--models", default=",".join(MODELS), help="all: the models.")
    parser.add_argument("--clip", type=Path, help="Clip to restore (default: the sample).")
    parser.add_argument("--seconds", type=float, default=3, help="levers: video length.")
    parser.add_argument("--levers", default=",".join(LEVERS), help="levers: which.")
    parser.add_argument("--settings", default=",".join(DEFAULT_SETTINGS), help="window, speakers.")
    parser.add_argument("--repeats", type=int, default=3, help="window: timed calls.")
    parser.add_argument("--data", help="speakers (and all): a folder avrestore prepare made.")
    parser.add_argument("--max-frames", type=int, default=24, help="speakers: per clip.")
    parser.add_argument("--json", type=Path, help="Also write the rows here.")
    args = parser.parse_args()
    if args.what == "speakers" and args.data is None:
        parser.error("speakers needs --data, a prepared folder")
    try:
        results = _measurements(args)
    except InputError as e:
        parser.exit(2, f"{parser.prog}: error: {e}\n")
    if args.json is not None:
        with atomic_path(args.json) as tmp:
            tmp.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
