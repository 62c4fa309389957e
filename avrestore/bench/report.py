"""The machine a benchmark ran on, and the results as a markdown table."""

from __future__ import annotations

import os
import platform
from importlib import metadata
from typing import Any

from avrestore.machine import cpu_model


def rounded(x: float, digits: int = 4) -> float:
    """``x`` to ``digits`` significant digits: tiny timings keep their value, unlike round()."""
    return float(f"{x:.{digits}g}")


def machine() -> dict[str, Any]:
    """CPU model and count, Python, torch version (read without importing torch) and OS."""
    return {
        "cpu": cpu_model(),
        "logical_cpus": os.cpu_count(),
        "torch": metadata.version("torch"),
        "python": platform.python_version(),
        "platform": platform.platform(),
    }


Cells = list[tuple[str, str]]  # (case, result) of each table row a result row gives


def _restore(row: dict) -> Cells:
    case = f"{row['model']}, {row['task']}, {row['video_s']:g} s video ({row['frames']} frames)"
    cells = [(case, f"{row['s_per_frame']:.3g} s/frame")]
    # One row per stage, so that the slow one shows: wall and CPU seconds per frame.
    frames = row["frames"]
    for name, seconds in row["stages_s"].items():
        cpu = row["stages_cpu_s"][name]
        value = f"{seconds / frames:.3g} s/frame ({cpu / frames:.3g} s CPU)"
        cells.append((f"{case}: {name}", value))
    cells.append((f"{case}: in no stage", f"{row['unstaged_s'] / frames:.3g} s/frame"))
    latency = row["latency_s"]
    value = f"{latency['mean']:.3g} s mean, {latency['min']:.3g}-{latency['max']:.3g} s"
    cells.append((f"{case}: latency, decode to encode", value))
    return cells


def _model(row: dict) -> Cells:
    case = f"{row['model']}, {row['size']}², {row['frames_in']}→{row['frames_out']} frames"
    return [(case, f"{row['s_per_window']:.3g} s/window, {row['s_per_frame']:.3g} s/frame")]


def _train(row: dict) -> Cells:
    case = f"{row['model']}, {row['setting']}, batch {row['batch']}"
    if "error" in row:
        return [(case, "fails: " + row["error"].split(". ")[0])]  # the first sentence fits
    diff = row.get("loss_diff_vs_fp32")
    versus = "fp32 reference" if diff is None else f"loss vs fp32 {diff:.2g}"
    return [(case, f"{row['s_per_step']:.3g} s/step ({versus})")]


def _data(row: dict) -> Cells:
    case = f"{row['task']}, {row['workers']} workers, batch {row['batch']}, {row['patch']}²"
    return [(case, f"{row['samples_per_s']:.4g} samples/s")]


CELLS = {"restore": _restore, "model": _model, "train": _train, "data": _data}


def table(results: list[dict]) -> str:
    """One markdown row per measurement (a restore's stages and latency get rows of their
    own): benchmark, case, result, the benchmark process's peak RSS and its torch threads."""
    lines = [
        "| benchmark | case | result | peak RSS | threads |",
        "| --- | --- | --- | ---: | ---: |",
    ]
    for result in results:
        name = result["benchmark"]
        if "error" in result:
            lines.append(f"| {name} | - | failed: {result['error']} | - | - |")
            continue
        rss = f"{result['peak_rss_mib']:.0f} MiB"
        for row in result["rows"]:
            for case, value in CELLS[name](row):
                lines.append(f"| {name} | {case} | {value} | {rss} | {result['torch_threads']} |")
    return "\n".join(lines)
