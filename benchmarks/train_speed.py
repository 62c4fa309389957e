"""Seconds per training step of a GAVN spec under the levers this CPU has, with numerics
checked against fp32.

    .venv/bin/python benchmarks/train_speed.py data/prepared224 --steps 12 --threads 1

Each setting trains a fresh model (the same seed, so the same initial weights) on the same
real batches (deblur task at k 21: windows of the prepared training clips) for ``--steps`` steps:
forward, Charbonnier loss, backward, Adam at 4e-4, exactly as ``avrestore train`` does. It
reports the median seconds per step after the first two (warm-up), and the mean absolute
difference of its loss curve from the fp32 run at the same patch size: a faster setting is
only a choice if that stays within the noise of the curve. Settings that raise on this CPU
(e.g. oneDNN's LSTM under bf16 autocast) are reported with their error; the fp32 run with
the same branches is the reference of each. One JSON line per setting.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from dataclasses import dataclass

import torch

from avrestore.data.datasets import FaceWindowDataset
from avrestore.degrade import DegradationRanges
from avrestore.models.losses import charbonnier
from avrestore.models.registry import build


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


SETTINGS = (
    Setting(96),
    Setting(96, "bf16"),
    Setting(96, use_audio=False),
    Setting(96, "bf16", use_audio=False),
    Setting(96, channels_last=True),
    Setting(80),
    Setting(64),
)


def batches(root: str, patch: int, batch: int, steps: int) -> list[dict]:
    """``steps`` fixed training batches of real blurred (k 21) windows at ``patch``²."""
    ds = FaceWindowDataset(
        root, "train", "deblur", patch=patch, seed=0, levels=DegradationRanges(blur=(21, 21))
    )
    ds.build_caches()
    out = []
    for s in range(steps):
        items = [ds[(i * 997 + s * 131) % len(ds), s] for i in range(batch)]
        out.append({k: torch.stack([it[k] for it in items]) for k in ("lq", "hq", "audio", "crop")})
        out[-1]["landmarks"] = torch.stack([it["landmarks"] for it in items])
    return out


def run(setting: Setting, data: list[dict], model_name: str) -> dict:
    """Train ``len(data)`` steps; seconds per step and the loss curve."""
    torch.manual_seed(0)
    model = build(model_name, use_audio=setting.use_audio)
    if setting.channels_last:
        model = model.to(memory_format=torch.channels_last)
    opt = torch.optim.Adam(model.parameters(), lr=4e-4)
    bf16 = setting.precision == "bf16"
    times, losses = [], []
    for b in data:
        start = time.perf_counter()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            out = model(
                b["lq"],
                b["audio"] if setting.use_audio else None,
                b["landmarks"],
                crop=b["crop"],
            )
            loss = charbonnier(out.float(), b["hq"])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        times.append(time.perf_counter() - start)
        losses.append(loss.item())
    return {"s_per_step": round(statistics.median(times[2:]), 3), "losses": losses}


def main() -> None:
    """Run every setting and print one JSON line each."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("root", help="a prepared folder (avrestore prepare)")
    ap.add_argument("--model", default="gavn-small")
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--steps", type=int, default=12)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    data = {p: batches(args.root, p, args.batch, args.steps) for p in {s.patch for s in SETTINGS}}
    reference: dict[tuple[int, bool], list[float]] = {}
    for setting in SETTINGS:
        row = {"setting": setting.label, "batch": args.batch, "threads": args.threads}
        try:
            result = run(setting, data[setting.patch], args.model)
        except RuntimeError as e:
            row["error"] = str(e).splitlines()[0][:160]
            print(json.dumps(row), flush=True)
            continue
        losses = result.pop("losses")
        key = (setting.patch, setting.use_audio)
        if setting == Setting(setting.patch, use_audio=setting.use_audio):
            reference[key] = losses
        ref = reference.get(key)
        if ref is not None and ref is not losses:
            diff = statistics.mean(abs(a - b) for a, b in zip(losses, ref, strict=True))
            row["loss_diff_vs_fp32"] = round(diff, 6)
        row.update(result, final_loss=round(losses[-1], 5))
        print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
