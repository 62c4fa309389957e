"""TS-VQGAN-small trained on the lent accelerator machine (one GPU; no PyAV there, and 64 MiB of
files travel: /work/.library/device/README.md), with the recipe of configs/ts-vqgan-small.yaml
at a larger batch and as many steps as a wall-clock budget allows.

  pack   (here)  the clean 224² crops of the training and validation speakers' clips (3
                 consecutive frames of every ``--stride``) as JPEG (``--quality``) in one .npz
                 of bytes and offsets: the device machine decodes them with OpenCV. JPEG is
                 the one deviation from the trainer's data; its error is printed (PSNR
                 against the decoded face.mp4).
  train  (there) the stages of ``--config`` (learning rates, schedules, ``quantize``): the
                 warm-up autoencoder, then the quantised stage (k-means codebook from the first
                 batches), on random 128² patches of 3 consecutive frames, flipped at random,
                 bf16 autocast.
                 ``--seconds`` is the budget: a timed first stretch sets the steps, split
                 ``--warmup`` / rest between the stages. Validation on whole 224² windows of
                 the validation speakers prints the trainer's ``STAGE epoch E/N: {json}`` lines.
                 The weights (``save_model``, the trainer's metadata) are written in parts
                 under 16 MiB, the most a file may weigh on its way back; ``cat`` joins them.

The loss, the optimiser and the validation scores are the trainer's own (``Autoencoder``,
``optimiser_for``); only the data source differs.
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import torch
import yaml

from avrestore.models.registry import build
from avrestore.models.weights import save_model
from avrestore.train.objectives import OBJECTIVES, mean_scores
from avrestore.train.optim import optimiser_for

MODEL = "ts-vqgan-small"
CLIP = 3  # frames per training clip (TS-VQGAN's temporal attention window)
CONFIG = Path(__file__).resolve().parents[1] / "configs" / "ts-vqgan-small.yaml"
PART_BYTES = 15 * 2**20  # under the 16 MiB a returned file may weigh


def pack(root: Path, out: Path, quality: int, stride: int) -> None:
    """Encode the frames of the train and val clips of a prepared folder as JPEG: the first
    CLIP of every ``stride`` (the most that fits the 64 MiB that travel)."""
    import cv2

    from avrestore.media.video import read_frames

    blobs, clip_of, split_of, errors = [], [], [], []
    clips = [
        (split_id, clip)
        for split_id, split in enumerate(("train", "val"))
        for clip in (root / "splits" / f"{split}.txt").read_text().split()
    ]
    for clip_id, (split_id, clip) in enumerate(clips):
        frames, _ = read_frames(root / "clips" / clip / "face.mp4")
        kept = [i for i in range(len(frames)) if i % stride < CLIP]
        for rgb in frames[kept]:
            _, jpg = cv2.imencode(".jpg", rgb[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, quality])
            back = cv2.imdecode(jpg, cv2.IMREAD_COLOR)[..., ::-1]
            mse = np.mean((back.astype(np.float64) - rgb) ** 2)
            errors.append(10 * math.log10(255**2 / max(mse, 1e-10)))
            blobs.append(jpg.ravel())
        clip_of += [clip_id * 10**6 + i // stride for i in kept]  # a window never spans a gap
        split_of += [split_id] * len(kept)
    offsets = np.cumsum([0] + [len(b) for b in blobs])
    np.savez(
        out,
        jpeg=np.concatenate(blobs),
        offsets=offsets,
        clip=np.asarray(clip_of, np.int64),
        split=np.asarray(split_of, np.int8),
    )
    print(
        f"{len(blobs)} frames, {offsets[-1] / 2**20:.1f} MiB, JPEG q{quality}: "
        f"{np.mean(errors):.2f} dB mean PSNR against the decoded crops"
    )


def _decode(archive: Path, device: torch.device) -> tuple[torch.Tensor, np.ndarray, np.ndarray]:
    """Frames (N, 3, 224, 224) uint8 on ``device``, their clip ids and splits."""
    import cv2

    z = np.load(archive)
    jpeg, offsets = z["jpeg"], z["offsets"]
    frames = np.stack(
        [
            cv2.imdecode(jpeg[a:b], cv2.IMREAD_COLOR)[..., ::-1]
            for a, b in itertools.pairwise(offsets)
        ]
    )
    return torch.from_numpy(frames).permute(0, 3, 1, 2).to(device), z["clip"], z["split"]


def _starts(clip: np.ndarray, split: np.ndarray, which: int) -> np.ndarray:
    """First frames of the CLIP-frame windows that lie inside one clip of a split."""
    i = np.arange(len(clip) - CLIP + 1)
    same = (clip[i] == clip[i + CLIP - 1]) & (split[i] == which) & (split[i + CLIP - 1] == which)
    return i[same]


def _batch(
    frames: torch.Tensor, starts: np.ndarray, size: int, patch: int, rng: np.random.Generator
) -> dict[str, torch.Tensor]:
    """{"hq": (B, 3, 3, patch, patch)} in [0, 1]: random windows, places, flips."""
    h, w = frames.shape[-2:]
    items = []
    for s in rng.choice(starts, size):
        y, x = rng.integers(0, h - patch + 1), rng.integers(0, w - patch + 1)
        clip = frames[s : s + CLIP, :, y : y + patch, x : x + patch]
        items.append(clip.flip(-1) if rng.random() < 0.5 else clip)
    return {"hq": torch.stack(items).float() / 255}


def _validate(model, objective, frames, starts, device) -> dict[str, float]:
    model.eval()
    with torch.no_grad():
        scores = [
            objective.scores(model, {"hq": frames[s : s + CLIP][None].float() / 255}, device)
            for s in starts
        ]
    model.train()
    return mean_scores(scores)


def _save(model: torch.nn.Module, out: Path, steps: int, seconds: float, options: dict) -> None:
    """The weights as ``MODEL.safetensors.partK`` files (join: cat ...part* > file)."""
    whole = out / f"{MODEL}.safetensors"
    where = torch.cuda.get_device_name() if torch.cuda.is_available() else "cpu"
    meta = {"steps": steps, "train_seconds": f"{seconds:.0f}", "device": where}
    save_model(model, whole, {"type": MODEL, "quantize": True, **options}, meta)
    data = whole.read_bytes()
    for old in out.glob(f"{MODEL}.safetensors.part*"):
        old.unlink()
    for k in range(0, len(data), PART_BYTES):
        (out / f"{MODEL}.safetensors.part{k // PART_BYTES}").write_bytes(data[k : k + PART_BYTES])
    whole.unlink()


def _stages(config: Path) -> list[SimpleNamespace]:
    """The config's stages as ``optimiser_for`` reads them, with each stage's ``quantize``.
    Plain YAML: the typed schema imports the data side, which needs PyAV."""
    stages = yaml.safe_load(config.read_text())["train"]["stages"]
    return [
        SimpleNamespace(
            name=s["name"],
            lr=float(s["lr"]),
            schedule=s.get("schedule", "constant"),
            min_lr=float(s.get("min_lr", 0.0)),
            freeze=tuple(s.get("freeze", ())),
            quantize=bool(s["model"]["quantize"]),
        )
        for s in stages
    ]


def _synchronize(device: torch.device) -> None:
    """Wait for the GPU's queued work, so that the clock reads the steps' time."""
    if device.type == "cuda":
        torch.cuda.synchronize()


def train(args: argparse.Namespace) -> None:
    """Warm-up then quantised stage inside ``args.seconds`` (module docstring)."""
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    torch.backends.cudnn.benchmark = True
    torch.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)
    t0 = time.time()
    frames, clip, split = _decode(args.archive, device)
    train_starts, val_starts = _starts(clip, split, 0), _starts(clip, split, 1)
    val_starts = val_starts[:: max(1, len(val_starts) // args.val_windows)][: args.val_windows]
    print(
        f"{len(frames)} frames decoded in {time.time() - t0:.0f} s; "
        f"{len(train_starts)} training windows, {len(val_starts)} validation windows",
        flush=True,
    )
    objective = OBJECTIVES["autoencoder"]()
    stages = _stages(args.config)
    model = build(MODEL, quantize=False, **args.model_args).to(device)
    precision = torch.autocast(device.type, dtype=torch.bfloat16)

    def step(net, opt, sched) -> float:
        with precision:
            loss = objective.loss(
                net, _batch(frames, train_starts, args.batch, args.patch, rng), device
            )
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        return loss.item()

    # The budget in steps: time a stretch of warm-up steps (after cuDNN's first-call tuning).
    probe_opt, probe_sched = optimiser_for(model, stages[0], 10**9)
    for _ in range(5):
        step(model, probe_opt, probe_sched)
    _synchronize(device)
    t = time.time()
    for _ in range(args.probe_steps):
        step(model, probe_opt, probe_sched)
    _synchronize(device)
    per_step = (time.time() - t) / args.probe_steps
    budget = args.seconds - (time.time() - t0)
    total = int(budget / (per_step * (1 + args.val_overhead)))
    lengths = [int(total * args.warmup), total - int(total * args.warmup)]
    print(
        f"{per_step * 1000:.1f} ms/step at batch {args.batch} x {CLIP} x {args.patch}²: "
        f"{lengths[0]} warm-up + {lengths[1]} quantised steps",
        flush=True,
    )
    done, started = 5 + args.probe_steps, time.time()
    for stage, n in zip(stages, lengths, strict=True):
        new = build(MODEL, quantize=stage.quantize, **args.model_args).to(device)
        new.load_state_dict(model.state_dict())
        model = new
        model.train()
        opt, sched = optimiser_for(model, stage, n)
        epochs = max(1, n // args.val_every)
        for e in range(epochs):
            for _ in range(n // epochs):
                loss = step(model, opt, sched)
                done += 1
            scores = _validate(model, objective, frames, val_starts, device) | {"loss": loss}
            print(f"{stage.name} epoch {e + 1}/{epochs}: {json.dumps(scores)}", flush=True)
            _save(model, args.out, done, time.time() - t0, args.model_args)
    print(
        f"{done} steps, {time.time() - started:.0f} s of training, {time.time() - t0:.0f} s in all",
        flush=True,
    )


def main() -> None:
    """``pack`` here, ``train`` on the accelerator machine (module docstring)."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="command", required=True)
    a = sub.add_parser("pack")
    a.add_argument("root", type=Path)
    a.add_argument("out", type=Path)
    a.add_argument("--quality", type=int, default=85)
    a.add_argument("--stride", type=int, default=5)
    b = sub.add_parser("train")
    b.add_argument("archive", type=Path)
    b.add_argument("out", type=Path)
    b.add_argument("--seconds", type=float, default=420)
    b.add_argument("--batch", type=int, default=32)
    b.add_argument("--patch", type=int, default=128)
    b.add_argument("--warmup", type=float, default=0.3)
    b.add_argument("--probe-steps", type=int, default=20)
    b.add_argument("--val-every", type=int, default=500)
    b.add_argument("--val-windows", type=int, default=24)
    b.add_argument("--val-overhead", type=float, default=0.05)
    b.add_argument("--seed", type=int, default=0)
    b.add_argument("--config", type=Path, default=CONFIG, help="the stages' recipe")
    b.add_argument("--model-args", type=json.loads, default={}, help="JSON: the spec's changes")
    args = p.parse_args()
    if args.command == "pack":
        pack(args.root, args.out, args.quality, args.stride)
    else:
        args.out.mkdir(parents=True, exist_ok=True)
        train(args)


if __name__ == "__main__":
    main()
