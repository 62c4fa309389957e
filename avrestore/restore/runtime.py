"""How a restore runs (``RestorePath``) and what runs its model: eager PyTorch in fp32 or under
bf16 autocast, ONNX Runtime on the exported model (``models.onnx_export``), or whichever ran a
window fastest on this machine (``fastest``: timed once, the verdict kept beside the exported
model).
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import time
from collections.abc import Callable, Collection, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor, nn

from avrestore.errors import InputError
from avrestore.machine import cpu_model, native_bf16
from avrestore.media.files import atomic_path
from avrestore.models.contract import N_LANDMARKS, RestorerContract, restorer_contract
from avrestore.models.onnx_export import OnnxRestorer
from avrestore.restore.stream import BLOCK, TRAINING_CLIPS

RUNTIMES = ("torch", "bf16", "onnx", "auto")
PARALLEL = ("ops", "windows")
TIMED_CALLS = 3  # per runtime, after a warm-up call; the fastest counts (others' load is noise)


@dataclass(frozen=True)
class RestorePath:
    """How a restore runs; each field is a lever ``benchmarks/realtime.py`` measures.

    ``runtime``: ``torch`` (eager PyTorch, fp32), ``bf16`` (eager PyTorch under bf16 autocast,
    CPU only), ``onnx`` (ONNX Runtime on the exported model, CPU only) or ``auto``
    (``fastest``); ``overlap``: decode and encode in threads of their own
    beside the model; ``detect_every``: search every k-th frame for faces (the tracker and the
    box smoothing bridge the rest); ``block``: frames restored at a time (the latency from a
    frame's decoding to its encoding, and the frames held, grow with it); ``parallel``: how
    the run's threads share the model: ``ops`` (each window on all of them, torch's
    intra-op parallelism) or ``windows`` (as many windows at once as threads, each on one:
    the same values, and no core waits for another's share of a small convolution; the first
    pass then also searches as many frames for faces at once);
    ``keep_memory``: the process keeps the memory it frees for reuse
    (``machine.keep_freed_memory``: no page faults for each window's fresh activations).
    """

    runtime: str = "torch"
    overlap: bool = False
    detect_every: int = TRAINING_CLIPS.detect_every
    block: int = BLOCK
    parallel: str = "ops"
    keep_memory: bool = False

    def check(self, device: torch.device) -> None:
        """InputError for an unknown runtime or parallelism, ONNX Runtime off the CPU, or a
        count below 1."""
        if self.runtime not in RUNTIMES:
            raise InputError(f"runtime must be one of {', '.join(RUNTIMES)}, got {self.runtime!r}")
        if self.parallel not in PARALLEL:
            raise InputError(
                f"parallel must be one of {', '.join(PARALLEL)}, got {self.parallel!r}"
            )
        if self.runtime != "torch" and device.type != "cpu":
            raise InputError(
                "--realtime runs on the CPU (ONNX Runtime or bf16 autocast); use it with "
                "--device cpu"
            )
        for name, value in (("detect_every", self.detect_every), ("block", self.block)):
            if value < 1:
                raise InputError(f"{name} must be at least 1, got {value}")


REFERENCE = RestorePath()
# ``--realtime``: every lever at once. The fastest runtime for the model on this machine;
# decoding and encoding beside the model; faces searched for on every 10th frame, not every
# 2nd (a face that appears or jumps is found up to 9 frames later; the tracker interpolates
# between searches: on two moving-head clips the face's PSNR moved 0.004 dB, BENCHMARKS.md);
# blocks of 12 frames, not 64 (a lower latency at no cost in model time: a block reads its
# context, it does not restore it again); the threads share the work by windows, not by
# operations (bf16 on 2 threads: 8.0 fps against 6.6, BENCHMARKS.md); freed memory is kept
# for reuse (held at its peak until the process exits).
REALTIME = RestorePath(
    runtime="auto", overlap=True, detect_every=10, block=12, parallel="windows", keep_memory=True
)
# dB: how far the face's PSNR may move from the reference path's with ``REALTIME``, as
# tests/test_realtime.py checks on a real clip.
REALTIME_MAX_PSNR_LOSS = 0.05


@contextlib.contextmanager
def torch_threads(threads: int | None) -> Iterator[None]:
    """Run the ``with`` body on ``threads`` torch threads (None: as set), then restore them."""
    if threads is not None and threads < 1:
        raise InputError(f"--threads must be at least 1, got {threads}")
    before = torch.get_num_threads()
    torch.set_num_threads(threads or before)
    try:
        yield
    finally:
        torch.set_num_threads(before)


@contextlib.contextmanager
def model_threads(path: RestorePath, threads: int | None) -> Iterator[int]:
    """Run the ``with`` body on ``threads`` (None: torch's current count) shared as ``path``
    says; yields how many windows run at once (``parallel="windows"``: one per thread, torch
    then on one thread in each)."""
    with torch_threads(threads):
        workers = torch.get_num_threads() if path.parallel == "windows" else 1
        with torch_threads(1 if workers > 1 else None):
            yield workers


def window_inputs(contract: RestorerContract, audio: bool) -> dict[str, Tensor]:
    """Random keyword arguments of one window (batch 1) as ``restore_sequence`` passes them to
    a model of ``contract``: the crops, and the speech windows (if ``audio``: the video has
    speech) and landmarks the contract takes."""
    s = contract.crop_size
    inputs = {"frames": torch.rand(1, contract.frames_in, 3, s, s)}
    if contract.audio is not None and audio:
        a = contract.audio
        inputs["audio"] = torch.randn(1, contract.frames_out, a.window, a.n_mfcc)
    if contract.landmarks:
        inputs["landmarks"] = torch.rand(1, contract.frames_out, N_LANDMARKS, 2) * (s - 1)
    return inputs


class Bf16Autocast(nn.Module):
    """A restorer run by PyTorch under bf16 autocast on the CPU (the ``bf16`` runtime), its
    output back in fp32. What autocast keeps in fp32 stays so, and so do the parts our models
    take out of it (sampling positions, codebook distances)."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model, self.contract = model, restorer_contract(model)

    def forward(self, **inputs: Tensor) -> Tensor:
        """The model's output, computed in bf16 where autocast allows."""
        with torch.autocast("cpu", dtype=torch.bfloat16):
            return self.model(**inputs).float()


def model_runner(net: nn.Module, runtime: str, audio: bool) -> nn.Module:
    """What runs ``net`` for ``runtime`` on torch's current thread count: ``net`` itself, it
    under bf16 autocast, its ``OnnxRestorer``, or whichever is fastest here (``auto``). For
    ONNX Runtime the session is opened now (the model exported, or found in the cache) for the
    inputs a video with (``audio``) or without speech gives."""
    if runtime == "torch":
        return net
    if runtime == "bf16":
        return Bf16Autocast(net)
    inputs = window_inputs(restorer_contract(net), audio)
    threads = torch.get_num_threads()
    if runtime == "auto":
        return fastest(net, inputs, threads)
    runner = OnnxRestorer(net, threads)
    runner.session(inputs)
    return runner


def _best_seconds(
    runs: Mapping[str, Callable[[], object]], threads: int, optional: Collection[str] = ()
) -> dict[str, float]:
    """The fastest of ``TIMED_CALLS`` calls of each of ``runs``, after an untimed one each
    (which allocates, and opens an ONNX session). A run named in ``optional`` whose untimed
    call raises (a layer with no kernel on this CPU: oneDNN has no bf16 LSTM on some) is left
    out. The runs take turns, so that a load coming and going weighs on each alike; on one
    thread the calling thread's CPU seconds are timed (the work runs in it, and another job's
    load does not count), else the wall clock's."""
    clock = time.thread_time if threads == 1 else time.perf_counter
    usable = {}
    for name, run in runs.items():
        try:
            run()
        except RuntimeError:
            if name not in optional:
                raise
            continue
        usable[name] = run
    times: dict[str, list[float]] = {name: [] for name in usable}
    for _ in range(TIMED_CALLS):
        for name, run in usable.items():
            start = clock()
            run()
            times[name].append(clock() - start)
    return {name: min(t) for name, t in times.items()}


def fastest(
    model: nn.Module, inputs: Mapping[str, Tensor], threads: int, cache: Path | None = None
) -> nn.Module:
    """``model`` in fp32, under bf16 autocast, or its ``OnnxRestorer``, on ``threads`` threads:
    whichever ran one window of inputs like ``inputs`` fastest on this machine. bf16 competes
    only on a CPU that computes it natively (``machine.native_bf16``: emulated it is tens of
    times slower, and timing it would cost minutes) and where the model runs in it. All are
    timed the first time (the ONNX export, then a few windows each) and the verdict is kept in
    the ONNX cache under the model, the inputs, the threads, the CPU, ONNX Runtime's version
    and the runtimes that competed; removing that file times them again."""
    import onnxruntime  # loaded by the session anyway

    onnx = OnnxRestorer(model, threads, cache)
    offered = {"torch": model, "onnx": onnx}
    if native_bf16():
        offered["bf16"] = Bf16Autocast(model)
    exported = onnx.exported(inputs)
    key = [exported.stem, str(threads), cpu_model(), onnxruntime.__version__, *offered]
    verdict = onnx.cache / f"{hashlib.sha256('|'.join(key).encode()).hexdigest()[:32]}.json"
    if not verdict.is_file():
        with torch.inference_mode():
            runs = {n: functools.partial(r, **inputs) for n, r in offered.items()}
            seconds = _best_seconds(runs, threads, optional=("bf16",))
        with atomic_path(verdict) as tmp:
            tmp.write_text(json.dumps(seconds) + "\n")
    seconds = json.loads(verdict.read_text())
    return offered[min(seconds, key=seconds.__getitem__)]  # the first of equals: torch
