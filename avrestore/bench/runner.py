"""Run one benchmark in a fresh Python process and collect its rows and its peak memory.

A fresh process per benchmark keeps one benchmark's allocations (and torch's thread pool)
out of the next one's figures. The parent reads the child's peak resident memory from
``os.wait4`` (the ``ru_maxrss`` of that child alone, or of a worker process it waited for if
that was higher), so nothing but the benchmark is counted. The child writes its result to a
file, not stdout, so that whatever a library prints cannot corrupt it.

    python -m avrestore.bench.runner NAME PARAMS_JSON THREADS RESULT_PATH
"""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from avrestore.errors import InputError

# Each benchmark's module; its measure(**params) -> list[dict] runs in the child.
MODULES = {
    "restore": "avrestore.bench.restore",
    "model": "avrestore.bench.model",
    "train": "avrestore.bench.train_step",
    "data": "avrestore.bench.data",
}


def run_child(name: str, params: dict[str, Any], threads: int | None = None) -> dict[str, Any]:
    """Run benchmark ``name`` with ``params`` in a fresh process (``threads`` torch threads,
    None: torch's default); its rows, torch threads, wall seconds and peak RSS in MiB, or an
    ``error`` if it crashed (its traceback is on stderr). A user error raises InputError."""
    with tempfile.TemporaryDirectory(prefix="avrestore-bench-") as tmp:
        result_path = Path(tmp) / "result.json"
        command = [sys.executable, "-m", __name__, name, json.dumps(params)]
        start = time.perf_counter()
        # The child's stdout goes to stderr with its progress: stdout is kept for the report.
        child = subprocess.Popen([*command, str(threads or 0), str(result_path)], stdout=2)
        # wait4 rather than child.wait(): it returns this child's own resource usage.
        _, status, usage = os.wait4(child.pid, 0)
        child.returncode = os.waitstatus_to_exitcode(status)
        seconds = time.perf_counter() - start
        result = json.loads(result_path.read_text()) if result_path.is_file() else {}
    if "input_error" in result:
        raise InputError(f"{name} benchmark: {result['input_error']}")
    if child.returncode != 0 or "rows" not in result:
        return {"benchmark": name, "error": f"exit code {child.returncode}, see its output above"}
    return {
        "benchmark": name,
        "seconds": round(seconds, 2),
        "peak_rss_mib": round(usage.ru_maxrss / 1024, 1),  # KiB on Linux
        **result,
    }


def main(argv: list[str]) -> None:
    """Child side: set the threads, measure, write the rows (or the user error) as JSON."""
    name, params, threads, result_path = argv
    import torch

    if int(threads):
        torch.set_num_threads(int(threads))
    module = importlib.import_module(MODULES[name])
    try:
        rows = module.measure(**json.loads(params))
    except InputError as e:
        Path(result_path).write_text(json.dumps({"input_error": str(e)}))
        sys.exit(2)
    result = {"torch_threads": torch.get_num_threads(), "rows": rows}
    Path(result_path).write_text(json.dumps(result))


if __name__ == "__main__":
    main(sys.argv[1:])
