"""Seconds per training step of a GAVN spec under the levers a CPU has, numerics checked.

Each setting trains a fresh model (the same seed, so the same initial weights) on the same
real batches (deblur task at k 21: windows of a prepared folder's training clips): forward,
Charbonnier loss, backward, Adam at 4e-4, exactly as ``avrestore train`` does. A row gives the
median seconds per step after the warm-up steps and the mean absolute difference of its loss
curve from the fp32 run with the same patch and branches: a faster setting is only a choice
if that stays within the noise of the curve. A setting that raises on this CPU (e.g. oneDNN's
LSTM under bf16 autocast) is reported with its error.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Iterator
from dataclasses import dataclass

import torch
from tqdm import tqdm

from avrestore.bench.report import rounded
from avrestore.data.datasets import FaceWindowDataset
from avrestore.degrade import DegradationRanges
from avrestore.errors import InputError
from avrestore.models.losses import charbonnier
from avrestore.models.registry import build

WARMUP = 2  # steps not timed: the first ones allocate and tune oneDNN's kernels


@dataclass(frozen=True)
class Setting:
    """One way to run a training step."""

    patch: int
    precision: str = "fp32"  # or bf16 (torch.autocast on the CPU)
    channels_last: bool = False
    use_audio: bool = True

    @property
    def label(self) -> str:
        """A short name for the report."""
        parts = [f"{self.patch}²", self.precision]
        if self.channels_last:
            parts.append("channels_last")
        if not self.use_audio:
            parts.append("no audio")
        return ", ".join(parts)

    @property
    def reference(self) -> Setting:
        """The fp32 setting with the same patch and branches, whose loss curve this one's
        is compared with."""
        return Setting(self.patch, use_audio=self.use_audio)


def precision_settings(patch: int) -> tuple[Setting, ...]:
    """fp32 and bf16 at ``patch``², with the audio branch and without (oneDNN has no bf16
    LSTM on some CPUs, so bf16 is also measured where it can run)."""
    return tuple(
        Setting(patch, precision, use_audio=audio)
        for audio in (True, False)
        for precision in ("fp32", "bf16")
    )


def batches(root: str, patch: int, batch: int, steps: int) -> list[dict]:
    """``steps`` fixed training batches of real blurred (k 21) windows at ``patch``²."""
    ds = FaceWindowDataset(
        root, "train", "deblur", patch=patch, seed=0, levels=DegradationRanges(blur=(21, 21))
    )
    ds.build_caches()
    keys = ("lq", "hq", "audio", "crop", "landmarks")
    out = []
    for s in range(steps):
        items = [ds[(i * 997 + s * 131) % len(ds), s] for i in range(batch)]
        out.append({k: torch.stack([it[k] for it in items]) for k in keys})
    return out


def train_steps(setting: Setting, data: list[dict], model_name: str, warmup: int = WARMUP) -> dict:
    """Train one step per batch of ``data``: the median seconds per step after ``warmup``
    steps, and the loss curve."""
    if len(data) <= warmup:
        raise InputError(f"need more than {warmup} steps to time one, got {len(data)}")
    torch.manual_seed(0)
    model = build(model_name, use_audio=setting.use_audio)
    if setting.channels_last:
        model = model.to(memory_format=torch.channels_last)
    opt = torch.optim.Adam(model.parameters(), lr=4e-4)
    bf16 = setting.precision == "bf16"
    times, losses = [], []
    for b in tqdm(data, desc=f"train {setting.label}", unit="step", disable=None):
        start = time.perf_counter()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            out = model(
                b["lq"], b["audio"] if setting.use_audio else None, b["landmarks"], crop=b["crop"]
            )
            loss = charbonnier(out.float(), b["hq"])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        times.append(time.perf_counter() - start)
        losses.append(loss.item())
    return {"s_per_step": rounded(statistics.median(times[warmup:])), "losses": losses}


def compare(
    settings: tuple[Setting, ...], root: str, model: str, batch: int, steps: int
) -> Iterator[dict]:
    """One row per setting as it finishes; each fp32 reference must come before the
    settings compared with it."""
    data = {p: batches(root, p, batch, steps) for p in {s.patch for s in settings}}
    curves: dict[Setting, list[float]] = {}
    for setting in settings:
        row: dict = {"model": model, "setting": setting.label, "batch": batch, "steps": steps}
        try:
            result = train_steps(setting, data[setting.patch], model)
        except RuntimeError as e:
            yield {**row, "error": str(e).splitlines()[0][:160]}
            continue
        losses = curves[setting] = result.pop("losses")
        reference = curves.get(setting.reference)
        if setting != setting.reference and reference is not None:
            diff = statistics.mean(abs(a - b) for a, b in zip(losses, reference, strict=True))
            row["loss_diff_vs_fp32"] = rounded(diff)
        yield {**row, **result, "final_loss": rounded(losses[-1], 5)}


def measure(root: str, model: str, patch: int, batch: int, steps: int) -> list[dict]:
    """fp32 against bf16 at ``patch``² (``avrestore bench``'s entry point)."""
    return list(compare(precision_settings(patch), root, model, batch, steps))
