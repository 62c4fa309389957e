"""``avrestore bench``: time restoring, a model's forward pass, training steps and data
loading on this machine; print a markdown table and write the figures as JSON."""

from __future__ import annotations

import json
import sys
import tempfile
from dataclasses import asdict
from datetime import datetime, timezone
from pathlib import Path
from typing import Annotated

import typer

from avrestore.bench.suite import BENCHMARKS
from avrestore.errors import InputError


def parse_only(only: str) -> list[str]:
    """The benchmarks named in ``--only`` (comma-separated), in the suite's order."""
    names = {name.strip() for name in only.split(",") if name.strip()}
    unknown = sorted(names - set(BENCHMARKS))
    if unknown or not names:
        got = ", ".join(unknown) or repr(only)
        raise InputError(f"--only takes names of {', '.join(BENCHMARKS)}; got {got}")
    return [name for name in BENCHMARKS if name in names]


def _note(message: str) -> None:
    print(f"avrestore: bench: {message}", file=sys.stderr, flush=True)


def bench(
    only: Annotated[
        str, typer.Option(help=f"Comma-separated benchmarks to run, of {','.join(BENCHMARKS)}.")
    ] = ",".join(BENCHMARKS),
    quick: Annotated[
        bool, typer.Option("--quick", help="Small sizes and one repeat: seconds, indicative only.")
    ] = False,
    data: Annotated[
        Path | None,
        typer.Option(
            help="A prepared folder (avrestore prepare) for the train and data benchmarks "
            "(its cache/ is filled); default: the sample clip prepared in a temporary folder."
        ),
    ] = None,
    model: Annotated[str, typer.Option(help="Registered model to time (untrained).")] = (
        "gavn-small"
    ),
    threads: Annotated[
        int | None, typer.Option(min=1, help="torch threads per benchmark (default: torch's).")
    ] = None,
    json_path: Annotated[
        Path, typer.Option("--json", help="Where the JSON figures are written.")
    ] = Path("bench.json"),
) -> None:
    """Run the benchmarks, each in a fresh process; print a table of seconds per frame, window
    and step, samples per second and peak memory, and write them with the CPU, torch version
    and threads as JSON. Nothing is asserted: the figures are for the record."""
    # Imported here: `avrestore --help` must not load torch, cv2, av or dlib.
    from avrestore.bench.report import machine, table
    from avrestore.bench.suite import FULL, QUICK, Suite
    from avrestore.media.files import atomic_path, check_output

    names = parse_only(only)
    out = check_output(json_path)
    if data is not None and not (data / "splits" / "train.txt").is_file():
        raise InputError(
            f"--data {data} is not a prepared folder (no splits/train.txt); "
            "make one with `avrestore prepare SRC DST`"
        )
    sizes = QUICK if quick else FULL
    started = datetime.now(timezone.utc).isoformat(timespec="seconds")
    with tempfile.TemporaryDirectory(prefix="avrestore-bench-") as work:
        results = Suite(sizes, model, threads, data, Path(work), _note).run(names)
    report = {
        "started": started,
        "machine": machine(),
        "settings": {
            "only": names,
            "quick": quick,
            "model": model,
            "threads": threads,
            "data": None if data is None else str(data),
            "sizes": asdict(sizes),
        },
        "results": results,
    }
    with atomic_path(out) as tmp:
        tmp.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n")
    m = report["machine"]
    typer.echo(f"{m['cpu']}, {m['logical_cpus']} logical CPUs, torch {m['torch']}\n")
    typer.echo(table(results))
    typer.echo(f"\nresults: {out}")
    if any("error" in r for r in results):
        raise typer.Exit(1)
