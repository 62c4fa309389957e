"""``avrestore restore --realtime`` with the shipped weights on a real clip: ONNX Runtime gives
the PyTorch model's output on a real window, so does bf16 autocast within its rounding, the
exported model is cached and reused, the fastest runtime is timed once (bf16 only where the CPU
computes it natively), the realtime path's output stays within the stated PSNR of the
reference path's, and the memory it keeps is reused without faulting in again. Speeds are
measured by ``benchmarks/realtime.py``, never asserted here."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
from conftest import run_cli

from avrestore.bench.inference import real_window
from avrestore.bench.realtime import face_psnr
from avrestore.degrade import Degradation, degrade_video
from avrestore.errors import InputError
from avrestore.media.video import probe, read_frames
from avrestore.models.contract import restorer_contract
from avrestore.models.onnx_export import OnnxRestorer
from avrestore.models.weights import WEIGHTS_DIR, resolve_model
from avrestore.quality import psnr
from avrestore.restore.runtime import (
    REALTIME,
    REALTIME_MAX_PSNR_LOSS,
    Bf16Autocast,
    _best_seconds,
    fastest,
    model_runner,
    window_inputs,
)
from avrestore.restore.stream import plan_restoration
from avrestore.restore.video import restore_video

FRAMES = 12  # four windows of gavn-small: enough to compare the paths, seconds of CPU each
SHIPPED = ("gavn-small-car", "dbpn-small-car")


def _shipped(name: str) -> str:
    if not (WEIGHTS_DIR / f"{name}.safetensors").is_file():
        pytest.skip(f"no shipped {name} weights")
    return name


@pytest.fixture(autouse=True)
def _one_thread(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    # One torch thread on the two shared cores (see test_restore); the CLI's too.
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def onnx_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A user cache of this module's own, shared by its tests (one export per model), the
    CLI's included."""
    root = tmp_path_factory.mktemp("cache")
    with pytest.MonkeyPatch.context() as m:
        m.setenv("XDG_CACHE_HOME", str(root))
        yield root / "avrestore" / "onnx"


@pytest.fixture(scope="module")
def compressed(grid_clip: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The GRID clip compressed at CRF 40, its audio kept."""
    out = tmp_path_factory.mktemp("lq") / "grid_crf40.mp4"
    return degrade_video(grid_clip, out, Degradation(crf=40), progress=False)


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
@pytest.mark.parametrize("name", SHIPPED)
def test_onnx_runtime_gives_the_pytorch_output_on_a_real_window(
    name: str, compressed: Path, onnx_cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    net = resolve_model(_shipped(name))
    inputs = real_window(net, compressed)  # real crops, speech windows and dlib landmarks
    # The window restore builds for opening a session has the real one's names and shapes.
    example = window_inputs(restorer_contract(net), audio="audio" in inputs)
    assert {n: t.shape for n, t in example.items()} == {n: t.shape for n, t in inputs.items()}
    runner = OnnxRestorer(net, threads=1, cache=onnx_cache)
    with torch.inference_mode():
        want, got = net(**inputs), runner(**inputs)
    assert got.shape == want.shape
    assert (got - want).abs().max() < 1e-3
    # Kept whole (no temporary file left beside it) and reused: a new runner exports nothing.
    exported = runner.exported(inputs)
    assert exported.is_file() and not [p for p in onnx_cache.iterdir() if ".part" in p.name]

    def export_again(*args: object) -> None:
        raise AssertionError("exported again")

    monkeypatch.setattr("avrestore.models.onnx_export.export_restorer", export_again)
    again = OnnxRestorer(net, threads=1, cache=onnx_cache)
    assert again.exported(inputs) == exported
    with torch.inference_mode():
        assert (again(**inputs) - got).abs().max() < 1e-6


def test_bf16_autocast_gives_the_fp32_output_within_its_rounding_on_a_real_window(
    compressed: Path,
) -> None:
    # dbpn-tiny: a window is milliseconds even where bf16 is emulated.
    net = resolve_model(_shipped("dbpn-tiny-car"))
    inputs = real_window(net, compressed)
    runner = model_runner(net, "bf16", audio=False)
    assert isinstance(runner, Bf16Autocast) and restorer_contract(runner) == restorer_contract(net)
    with torch.inference_mode():
        want, got = net(**inputs), runner(**inputs)
    assert got.dtype == torch.float32 and got.shape == want.shape
    assert 0 < (got - want).abs().max() < 0.02  # bf16 ran (it differs), 8 bits of mantissa
    assert psnr(got.clamp(0, 1).numpy(), want.clamp(0, 1).numpy()) > 60  # measured 72.7 dB


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
@pytest.mark.parametrize("bf16", [False, True], ids=["emulated-bf16", "native-bf16"])
def test_the_fastest_runtime_is_timed_once_and_remembered(
    bf16: bool, onnx_cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Whether bf16 competes follows the CPU's flags, here set either way (dbpn-tiny: even
    # emulated bf16 times in seconds).
    monkeypatch.setattr("avrestore.restore.runtime.native_bf16", lambda: bf16)
    net = resolve_model(_shipped("dbpn-tiny-car"))
    inputs = window_inputs(restorer_contract(net), audio=False)
    earlier = set(onnx_cache.glob("*.json"))
    first = fastest(net, inputs, threads=1, cache=onnx_cache)
    (verdict,) = set(onnx_cache.glob("*.json")) - earlier
    seconds = json.loads(verdict.read_text())
    assert set(seconds) == {"torch", "onnx"} | ({"bf16"} if bf16 else set())
    assert all(s > 0 for s in seconds.values())
    winner = min(seconds, key=seconds.__getitem__)
    assert type(first) is {"torch": type(net), "onnx": OnnxRestorer, "bf16": Bf16Autocast}[winner]

    def timed_again(*args: object) -> dict[str, float]:
        raise AssertionError("timed again")

    monkeypatch.setattr("avrestore.restore.runtime._best_seconds", timed_again)
    again = fastest(net, inputs, threads=1, cache=onnx_cache)
    assert type(again) is type(first)


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_realtime_runs_end_to_end_within_the_stated_psnr_of_the_reference(
    compressed: Path, grid_clip: Path, onnx_cache: Path, tmp_path: Path
) -> None:
    model = _shipped("gavn-small-car")
    ref = restore_video(compressed, tmp_path / "ref.mp4", "car", model, max_frames=FRAMES)
    fast = tmp_path / "fast.mp4"
    r = run_cli(
        "restore", compressed, "-o", fast, "--task", "car", "--realtime",
        "--max-frames", FRAMES,
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert f"restored {FRAMES} of {FRAMES} frames" in r.stdout and "frames/s" in r.stdout
    assert probe(fast).has_audio and probe(fast).frame_count == ref.frames == FRAMES
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fast.mp4", "ref.mp4"]
    original = read_frames(grid_clip, max_frames=FRAMES)[0]
    boxes = plan_restoration(compressed, max_frames=FRAMES).tracks[0].boxes
    scores = [face_psnr(read_frames(p)[0], original, boxes) for p in (ref.output, fast)]
    assert abs(scores[1] - scores[0]) <= REALTIME_MAX_PSNR_LOSS, scores
    lq = face_psnr(read_frames(compressed, max_frames=FRAMES)[0], original, boxes)
    assert scores[1] > lq  # still a restoration


def test_realtime_is_documented_and_bad_threads_are_one_line(
    compressed: Path, tmp_path: Path
) -> None:
    r = run_cli("restore", "--help")
    assert r.returncode == 0 and "--realtime" in r.stdout
    help_text = " ".join(r.stdout.replace("│", " ").split())  # out of rich's box, unwrapped
    assert "Trades:" in help_text and f"within {REALTIME_MAX_PSNR_LOSS} dB" in help_text
    r = run_cli(
        "restore", compressed, "-o", tmp_path / "out.mp4", "--task", "car", "--realtime",
        "--threads", "0",
    )  # fmt: skip
    assert r.returncode == 2
    assert r.stderr == "avrestore: error: --threads must be at least 1, got 0\n"
    assert not list(tmp_path.iterdir())
    with pytest.raises(InputError, match="runs on the CPU"):
        REALTIME.check(torch.device("cuda"))  # (the check itself needs no CUDA device)
    REALTIME.check(torch.device("cpu"))


def test_a_runtime_this_cpu_cannot_run_is_left_out_only_if_optional() -> None:
    def no_kernel() -> None:
        raise RuntimeError("no bf16 kernel for LSTM here")

    runs = {"torch": lambda: sum(range(1000)), "bf16": no_kernel}
    seconds = _best_seconds(runs, threads=1, optional=("bf16",))
    assert set(seconds) == {"torch"} and seconds["torch"] >= 0
    with pytest.raises(RuntimeError, match="no bf16 kernel"):
        _best_seconds(runs, threads=1)


FAULTS = """
import resource, sys
import numpy as np
from avrestore.machine import keep_freed_memory
if sys.argv[1] == "keep":
    assert keep_freed_memory()
def round_():
    live = [np.ones(2**20) for _ in range(4)]  # four 8 MiB blocks alive at once, then freed
    del live
round_()
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(10):
    round_()
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt")
def test_kept_memory_is_reused_without_faulting_its_pages_in_again() -> None:
    def faults(mode: str) -> int:
        out = subprocess.run(
            [sys.executable, "-c", FAULTS, mode], capture_output=True, text=True, check=True
        )
        return int(out.stdout)

    # 10 rounds of 32 MiB: glibc's defaults give the freed top of the heap back and fault its
    # pages in again each round (~8,000 faults a round); kept, the pages stay.
    default, kept = faults("default"), faults("keep")
    assert default > 5_000 and kept < default / 50, (default, kept)
