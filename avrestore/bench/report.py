"""The machine a benchmark ran on, and the results as a markdown table."""

from __future__ import annotations

import os
import platform
from importlib import metadata
from pathlib import Path
from typing import Any


def rounded(x: float, digits: int = 4) -> float:
    """``x`` to ``digits`` significant digits: tiny timings keep their value, unlike round()."""
    return float(f"{x:.{digits}g}")


def cpu_model(cpuinfo: Path = Path("/proc/cpuinfo")) -> str:
    """The CPU's model name from /proc/cpuinfo (the platform's word for it elsewhere)."""
    try:
        for line in cpuinfo.read_text().splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "model name":
                return value.strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def machine() -> dict[str, Any]:
    """CPU model and count, Python, torch version (read without importing torch) and OS."""
    return {
        "cpu": cpu_model(),
        "logical_cpus": os.cpu_count(),
        "torch": metadata.version("torch"),
        "python": platform.python_version(),
        "platform": platform.platform(),
    }


def _restore(row: dict) -> tuple[str, str]:
    case = f"{row['model']}, {row['task']}, {row['video_s']:g} s video ({row['frames']} frames)"
    return case, f"{row['s_per_frame']:.3g} s/frame"


def _model(row: dict) -> tuple[str, str]:
    case = f"{row['model']}, {row['size']}², {row['frames_in']}→{row['frames_out']} frames"
    return case, f"{row['s_per_window']:.3g} s/window, {row['s_per_frame']:.3g} s/frame"


def _train(row: dict) -> tuple[str, str]:
    case = f"{row['model']}, {row['setting']}, batch {row['batch']}"
    if "error" in row:
        return case, "fails: " + row["error"].split(". ")[0]  # the first sentence fits a cell
    diff = row.get("loss_diff_vs_fp32")
    versus = "fp32 reference" if diff is None else f"loss vs fp32 {diff:.2g}"
    return case, f"{row['s_per_step']:.3g} s/step ({versus})"


def _data(row: dict) -> tuple[str, str]:
    case = f"{row['task']}, {row['workers']} workers, batch {row['batch']}, {row['patch']}²"
    return case, f"{row['samples_per_s']:.4g} samples/s"


CELLS = {"restore": _restore, "model": _model, "train": _train, "data": _data}


def table(results: list[dict]) -> str:
    """One markdown row per measurement: benchmark, case, result, the benchmark process's
    peak RSS and its torch threads."""
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
            case, value = CELLS[name](row)
            lines.append(f"| {name} | {case} | {value} | {rss} | {result['torch_threads']} |")
    return "\n".join(lines)
