"""``avrestore bench``: the JSON and table of a quick run, option errors, and the report's
formatting. Nothing here checks a speed: only that figures are present, finite and positive."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from conftest import run_cli

from avrestore.bench.report import rounded, table
from avrestore.cli.bench import parse_only
from avrestore.errors import InputError
from avrestore.machine import cpu_model, native_bf16
from avrestore.models.registry import REGISTRY
from avrestore.restore.timing import STAGES


def _positive(x: object) -> bool:
    return isinstance(x, (int, float)) and math.isfinite(x) and x > 0


def test_quick_model_run_writes_the_json_and_prints_the_table(tmp_path: Path) -> None:
    out = tmp_path / "figures.json"
    r = run_cli("bench", "--quick", "--only", "model", "--threads", "1", "--json", out)
    assert r.returncode == 0, r.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["figures.json"]  # no temp file left
    report = json.loads(out.read_text())
    assert {"cpu", "logical_cpus", "torch", "python", "platform"} <= report["machine"].keys()
    assert report["machine"]["cpu"] and report["machine"]["torch"]
    assert report["settings"]["only"] == ["model"] and report["settings"]["quick"] is True
    (result,) = report["results"]
    assert result["benchmark"] == "model" and result["torch_threads"] == 1
    assert _positive(result["peak_rss_mib"]) and _positive(result["seconds"])
    (row,) = result["rows"]
    assert row["model"] == "gavn-small" and row["size"] == 64
    assert (row["frames_in"], row["frames_out"]) == (7, 3)
    for key in ("s_per_window", "s_per_frame", "params", "gmacs_per_frame"):
        assert _positive(row[key]), key
    assert len(row["times_s"]) == 1 and all(map(_positive, row["times_s"]))
    assert "| model | gavn-small, 64², 7→3 frames |" in r.stdout
    assert r.stdout.strip().endswith(f"results: {out}")


def test_an_unknown_benchmark_is_one_error_line_and_exit_2(tmp_path: Path) -> None:
    r = run_cli("bench", "--only", "model,nosuch", "--json", tmp_path / "b.json")
    assert r.returncode == 2
    assert r.stderr.count("\n") == 1 and r.stderr.startswith("avrestore: error: --only")
    assert "nosuch" in r.stderr and not list(tmp_path.iterdir())


def test_a_user_error_inside_a_benchmark_is_one_error_line_and_exit_2(tmp_path: Path) -> None:
    r = run_cli("bench", "--quick", "--only", "model", "--model", "nosuch", cwd=tmp_path)
    assert r.returncode == 2
    errors = [line for line in r.stderr.splitlines() if "error" in line]
    assert errors == [
        "avrestore: error: model benchmark: unknown model 'nosuch'; "
        f"known: {', '.join(sorted(REGISTRY))}"
    ]
    assert not list(tmp_path.iterdir())  # no bench.json


def test_only_keeps_the_suite_order_and_refuses_nothing_or_unknown_names() -> None:
    assert parse_only("data, model,model") == ["model", "data"]
    for bad in ("", " , ", "model,gpu"):
        with pytest.raises(InputError, match="--only"):
            parse_only(bad)


def test_the_table_names_every_benchmark_and_reports_failures() -> None:
    common = {"seconds": 1.0, "peak_rss_mib": 512.4, "torch_threads": 2}
    stages = dict.fromkeys(STAGES, 0.25)
    restore = {
        "model": "gavn-small",
        "task": "car",
        "video_s": 1.0,
        "frames": 25,
        "stages_s": {**stages, "model": 5.0},
        "stages_cpu_s": {**stages, "model": 4.0},
        "unstaged_s": 0.05,
        "latency_s": {"mean": 3.0, "min": 2.0, "max": 4.0},
    }
    model = {"model": "gavn", "size": 224, "frames_in": 7, "frames_out": 3}
    train = {"model": "gavn-small", "setting": "64², bf16", "batch": 4}
    results = [
        {"benchmark": "restore", **common, "rows": [{**restore, "s_per_frame": 0.25}]},
        {
            "benchmark": "model",
            **common,
            "rows": [{**model, "s_per_window": 1.6, "s_per_frame": 0.53}],
        },
        {
            "benchmark": "train",
            **common,
            "rows": [
                {**train, "s_per_step": 2.0, "loss_diff_vs_fp32": 1e-7},
                {**train, "error": "no bf16 LSTM. Run with ONEDNN_VERBOSE"},
            ],
        },
        {"benchmark": "data", "error": "exit code 1, see its output above"},
    ]
    lines = table(results).splitlines()
    assert lines[0] == "| benchmark | case | result | peak RSS | threads |"
    restore_lines = [line for line in lines if line.startswith("| restore")]
    assert len(restore_lines) == 1 + len(STAGES) + 2  # the run, its stages, unstaged, latency
    assert "(25 frames): model | 0.2 s/frame (0.16 s CPU) |" in restore_lines[1 + 5]
    assert "(25 frames): latency, decode to encode | 3 s mean, 2-4 s |" in restore_lines[-1]
    lines = [lines[2], *lines[2 + len(restore_lines) :]]
    assert [line.split(" | ")[0] for line in lines] == [
        "| restore",
        "| model",
        "| train",
        "| train",
        "| data",
    ]
    assert "0.25 s/frame | 512 MiB | 2 |" in lines[0]
    assert "1.6 s/window, 0.53 s/frame" in lines[1]
    assert "2 s/step (loss vs fp32 1e-07)" in lines[2]
    assert "fails: no bf16 LSTM |" in lines[3]
    assert lines[4] == "| data | - | failed: exit code 1, see its output above | - | - |"


def test_cpu_model_and_rounding(tmp_path: Path) -> None:
    info = tmp_path / "cpuinfo"
    info.write_text("processor\t: 0\nmodel name\t: AMD EPYC 7B13\nprocessor\t: 1\n")
    assert cpu_model(info) == "AMD EPYC 7B13"
    assert cpu_model(tmp_path / "absent")  # falls back to the platform's word, never empty
    assert rounded(0.000123456) == 0.0001235 and rounded(1234.5678) == 1235.0


def test_native_bf16_reads_the_cpu_flags(tmp_path: Path) -> None:
    info = tmp_path / "cpuinfo"
    flags = "fpu avx2 avx512f avx512bw avx512_vnni"
    info.write_text(f"processor\t: 0\nflags\t\t: {flags}\n")
    assert not native_bf16(info)  # AVX-512 alone: bf16 is emulated
    info.write_text(f"processor\t: 0\nflags\t\t: {flags} avx512_bf16\n")
    assert native_bf16(info)
    info.write_text("processor\t: 0\nflags\t\t: fpu amx_tile amx_bf16\n")
    assert native_bf16(info)
    assert not native_bf16(tmp_path / "absent")
