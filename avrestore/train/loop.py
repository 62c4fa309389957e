"""The training loop: staged schedule, each stage's objective (``objectives``), Adam, atomic
checkpoints, resume.

One process or many (torchrun → DistributedDataParallel). Rank 0 writes checkpoints,
TensorBoard scalars and images, and shows a progress bar with rate and ETA.
"""

from __future__ import annotations

import inspect
import json
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, Dataset, Subset
from tqdm import tqdm

from avrestore.data.datasets import FaceWindowDataset
from avrestore.errors import InputError
from avrestore.models.contract import RestorerContract
from avrestore.models.registry import REGISTRY, build
from avrestore.models.weights import load_weights, read_metadata, save_model, weights_path
from avrestore.train.checkpoint import (
    latest_checkpoint,
    load_state,
    save_checkpoint,
    set_rng_state,
)
from avrestore.train.data import Contract, build_datasets, stage_contracts
from avrestore.train.distributed import Dist, close_distributed, init_distributed
from avrestore.train.objectives import OBJECTIVES, mean_scores
from avrestore.train.optim import optimiser_for
from avrestore.train.plan import locate, stage_start, total_steps
from avrestore.train.sampler import EpochSampler
from avrestore.train.schema import (
    ExperimentConfig,
    Stage,
    config_dict,
    parse_config,
    portable_spec,
)


@dataclass
class Run:
    """Everything a training run holds between stages."""

    cfg: ExperimentConfig
    dir: Path
    dist: Dist
    stages: tuple[Stage, ...]
    steps_per_epoch: int
    train_set: Dataset
    val_set: Dataset | None


def _model_for(run: Run, stage: Stage) -> nn.Module:
    spec = run.cfg.stage_model(stage)
    return build(spec.pop("type"), **spec)


def _carry_weights(dst: nn.Module, src: nn.Module) -> None:
    """Copy every tensor whose name and shape the two models share (stage → next stage)."""
    theirs = src.state_dict()
    own = dst.state_dict()
    dst.load_state_dict(
        {k: theirs[k] for k in own if k in theirs and theirs[k].shape == own[k].shape},
        strict=False,
    )


def _init_from(model: nn.Module, path: str) -> list[str]:
    """Start ``model`` from a weights file (a stage's ``init``): every tensor of the model must
    be in the file with its shape; tensors the model lacks (the branch an ablation removes,
    e.g. audio) are skipped, and their modules (two name levels) returned for the log."""
    p = weights_path(path)
    read_metadata(p)  # one clear line for a missing or damaged file
    try:
        missing, unexpected = load_weights(model, p, strict=False)
    except RuntimeError as e:
        first = str(e).strip().splitlines()[0]
        raise InputError(f"{p} does not fit the stage's model: {first}") from None
    if missing:
        raise InputError(f"{p} does not fit the stage's model: it lacks {missing[0]}")
    return sorted({".".join(k.split(".")[:2]) for k in unexpected})


def _autocast(precision: str, device: torch.device) -> torch.autocast:
    """``train.precision``: ``bf16`` autocast (1.55x faster on this CPU at equal loss, see
    BENCHMARKS.md) or ``fp32``. Validation always runs in fp32."""
    bf16 = precision == "bf16"
    return torch.autocast(
        device.type, dtype=torch.bfloat16 if bf16 else torch.float32, enabled=bf16
    )


def _private_generator(seed: int) -> torch.Generator:
    """A generator of the DataLoader's own, so that making a loader leaves the global RNG (and
    so model initialisation in later stages) untouched: resumed runs then match exactly."""
    return torch.Generator().manual_seed(seed)


def _loader(run: Run, epoch: int, skip: int) -> DataLoader:
    t = run.cfg.train
    sampler = EpochSampler(
        len(run.train_set),
        t.batch_size,
        run.steps_per_epoch,
        run.cfg.seed,
        epoch,
        run.dist.rank,
        run.dist.world,
        skip,
    )
    return DataLoader(
        run.train_set,
        batch_size=t.batch_size,
        sampler=sampler,
        num_workers=t.num_workers,
        drop_last=True,
        generator=_private_generator(epoch),
    )


@torch.inference_mode()
def validate(run: Run, objective: Any, model: nn.Module) -> tuple[dict[str, float], torch.Tensor]:
    """Scores averaged over ``train.val_items`` validation windows spread evenly over all the
    validation clips (all windows when it is 0 or more than there are), and a preview."""
    assert run.val_set is not None
    model.eval()
    limit = run.cfg.train.val_items
    total = len(run.val_set)
    n = total if limit <= 0 else min(limit, total)
    picks = np.linspace(0, total - 1, n).round().astype(int).tolist()
    loader = DataLoader(Subset(run.val_set, picks), batch_size=1, generator=_private_generator(0))
    scores, preview = [], None
    for batch in loader:
        scores.append(objective.scores(model, batch, run.dist.device))
        if preview is None:
            preview = objective.preview(model, batch, run.dist.device)
    model.train()
    return mean_scores(scores), preview


def _with_crop_size(cfg: ExperimentConfig, train_set: FaceWindowDataset) -> ExperimentConfig:
    """The config with the face crop size the model trains on among its arguments (so it
    travels in the weights and ``restore`` cuts faces at it), for a model that takes one."""
    if "crop_size" not in inspect.signature(REGISTRY[cfg.model["type"]].cls).parameters:
        return cfg
    sizes = {clip.size for clip in train_set.clips}
    if len(sizes) != 1 or len(set(next(iter(sizes)))) != 1:
        raise InputError(f"the clips of {cfg.data.root} are not square crops of one size")
    size = sizes.pop()[0]
    given = cfg.model.get("crop_size", size)
    if given != size:
        raise InputError(f"model.crop_size is {given}, the clips of {cfg.data.root} are {size}²")
    return replace(cfg, model={**cfg.model, "crop_size": size})


def _check_frozen(cfg: ExperimentConfig, contracts: list[Contract | None]) -> None:
    """One InputError line unless every stage freezes the pretrained parts its model's contract
    says no training may change (``frozen``: the VQ restorer's TS-VQGAN), before any data."""
    for i, (stage, contract) in enumerate(zip(cfg.train.stages, contracts, strict=True)):
        frozen = contract.frozen if isinstance(contract, RestorerContract) else ()
        for prefix in frozen:
            if not prefix.startswith(stage.freeze):
                kind = cfg.stage_model(stage)["type"]
                raise InputError(
                    f"train.stages.{i}.freeze must include {prefix.rstrip('.')!r}: "
                    f"{kind} never trains that pretrained part"
                )


def _prepare_run(
    cfg: ExperimentConfig, run_dir: Path, resume: bool
) -> tuple[Run, int, dict | None]:
    dist = init_distributed(cfg.device)
    torch.manual_seed(cfg.seed)
    np.random.seed(cfg.seed)
    contracts = stage_contracts(cfg)
    _check_frozen(cfg, contracts)
    train_set, val_set = build_datasets(cfg, contracts)
    cfg = _with_crop_size(cfg, train_set)
    batch = cfg.train.batch_size * dist.world
    steps = cfg.train.iters_per_epoch or max(1, len(train_set) // batch)
    run = Run(cfg, run_dir, dist, cfg.train.stages, steps, train_set, val_set)
    ckpt = latest_checkpoint(run_dir)
    if ckpt is not None and not resume:
        raise InputError(f"{run_dir} already has checkpoints; pass --resume or choose another run")
    state = load_state(ckpt) if (resume and ckpt is not None) else None
    if dist.main:
        run_dir.mkdir(parents=True, exist_ok=True)
        (run_dir / "config.yaml").write_text(yaml.safe_dump(config_dict(cfg), sort_keys=False))
    return run, (state["step"] if state else 0), state


def train(cfg: ExperimentConfig | dict, run_dir: str | Path, resume: bool = False) -> Path:
    """Train the configured model through all its stages; return the final weights' path.

    A config mapping (as read from YAML) is checked against the schema first.
    """
    if not isinstance(cfg, ExperimentConfig):
        cfg = parse_config(cfg)
    run, step, state = _prepare_run(cfg, Path(run_dir), resume)
    cfg = run.cfg  # with what the data settled (the crop size)
    t = cfg.train
    every = t.checkpoint_every or run.steps_per_epoch
    total = total_steps(run.stages, run.steps_per_epoch)
    device = run.dist.device
    writer = None
    if run.dist.main:
        from torch.utils.tensorboard import SummaryWriter

        writer = SummaryWriter(str(run.dir / "tb"))
    bar = tqdm(total=total, initial=step, desc="train", disable=not run.dist.main, unit="step")
    model: nn.Module | None = None
    pos = locate(step, run.stages, run.steps_per_epoch)
    for s in range(pos.stage, len(run.stages)):
        stage = run.stages[s]
        stage_steps = stage.epochs * run.steps_per_epoch
        resumed_here = state is not None and state["stage"] == s
        if state is not None and not resumed_here:
            # Resumed at a stage boundary: RNG as it stood before this stage's model was built.
            set_rng_state(state["rng"])
        new = _model_for(run, stage).to(device)
        ckpt = latest_checkpoint(run.dir) if state is not None else None
        if resumed_here and ckpt is not None:
            load_weights(new, ckpt / "model.safetensors")
        elif stage.init is not None:
            skipped = _init_from(new, stage.init)
            if skipped and run.dist.main:
                bar.write(f"{stage.name}: from {stage.init}, without {', '.join(skipped)}")
        elif model is not None:
            _carry_weights(new, model)
        elif state is not None and ckpt is not None:
            prev = _model_for(run, run.stages[state["stage"]])
            load_weights(prev, ckpt / "model.safetensors")
            _carry_weights(new, prev)
        model = new
        objective = OBJECTIVES[cfg.stage_objective(stage)](t.loss)
        opt, sched = optimiser_for(model, stage, stage_steps)
        if resumed_here:
            opt.load_state_dict(state["optimizer"])
            sched.load_state_dict(state["scheduler"])
            set_rng_state(state["rng"])
        state = None
        # Unused parameters happen: a batch whose clips lack audio skips the audio branch.
        net = (
            DistributedDataParallel(model, find_unused_parameters=True)
            if run.dist.world > 1
            else model
        )
        net.train()
        first = locate(step, run.stages, run.steps_per_epoch)
        for epoch in range(first.epoch if first.stage == s else 0, stage.epochs):
            skip = first.batch if (first.stage == s and epoch == first.epoch) else 0
            global_epoch = sum(x.epochs for x in run.stages[:s]) + epoch
            for batch in _loader(run, global_epoch, skip):
                with _autocast(t.precision, device):
                    loss = objective.loss(net, batch, device)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                sched.step()
                step += 1
                bar.update(1)
                bar.set_postfix(stage=stage.name, loss=f"{loss.item():.4f}")
                if writer is not None:
                    writer.add_scalar("train/loss", loss.item(), step)
                    writer.add_scalar("train/lr", sched.get_last_lr()[0], step)
                at_end = step == stage_start(s, run.stages, run.steps_per_epoch) + stage_steps
                if run.dist.main and (step % every == 0 or at_end):
                    save_checkpoint(
                        run.dir,
                        step,
                        model,
                        portable_spec(cfg.stage_model(stage)),
                        {
                            "step": step,
                            "stage": s,  # the stage of the saved weights
                            "optimizer": opt.state_dict(),
                            "scheduler": sched.state_dict(),
                        },
                        {"task": cfg.task},
                    )
                if t.stop_after is not None and step >= t.stop_after:
                    bar.close()
                    close_distributed()
                    return run.dir
            if run.dist.main and run.val_set is not None and writer is not None:
                scores, preview = validate(run, objective, model)
                for k, v in scores.items():
                    writer.add_scalar(f"val/{k}", v, step)
                writer.add_image(f"val/{stage.name}", preview, step)
                bar.write(f"{stage.name} epoch {epoch + 1}/{stage.epochs}: {json.dumps(scores)}")
    bar.close()
    final = run.dir / "model.safetensors"
    if run.dist.main and model is not None:
        spec = portable_spec(cfg.stage_model(run.stages[-1]))
        save_model(model, final, spec, {"steps": step, "task": cfg.task})
        writer.close()
    close_distributed()
    return final
