"""The staged schedule: which stage, epoch and batch a global step falls in.

GAVN trains in steps (the paper's "two-stage training"): the temporal module alone with its own
head; then identity + reconstruction with the temporal module frozen (warm-up); then all of it.
A config lists these as ``stages``; each names its epochs, learning rate, model switches, the
parameter prefixes it freezes, and whether it starts from the previous stage's weights.
Knowing the global step is enough to resume anywhere in this plan.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from avrestore.errors import InputError


@dataclass(frozen=True)
class Stage:
    """One stage of training: a model variant and an optimisation schedule.

    ``schedule``: ``constant`` (the paper's: one learning rate per stage) or ``cosine``
    (decay to ``min_lr`` over the stage). ``init``: a weights file the stage's model starts
    from instead of the previous stage's (to continue training a committed checkpoint when its
    run folder is gone).
    """

    name: str
    epochs: int
    lr: float
    model: dict[str, Any] = field(default_factory=dict)
    freeze: tuple[str, ...] = ()
    schedule: str = "constant"
    min_lr: float = 1e-7
    init: str | None = None


SCHEDULES = ("constant", "cosine")


@dataclass(frozen=True)
class Position:
    """Where a global step falls: stage index, epoch within the stage, batch within the epoch."""

    stage: int
    epoch: int
    batch: int


def parse_stages(items: list[dict[str, Any]]) -> list[Stage]:
    """Build the stage list of a config, with one clear error for a malformed entry."""
    if not items:
        raise InputError("config has no train.stages")
    stages = []
    for i, item in enumerate(items):
        try:
            stages.append(
                Stage(
                    name=str(item.get("name", f"stage{i}")),
                    epochs=int(item["epochs"]),
                    lr=float(item["lr"]),
                    model=dict(item.get("model") or {}),
                    freeze=tuple(item.get("freeze") or ()),
                    schedule=str(item.get("schedule", "constant")),
                    min_lr=float(item.get("min_lr", 1e-7)),
                    init=str(item["init"]) if item.get("init") else None,
                )
            )
        except (KeyError, TypeError, ValueError) as e:
            raise InputError(f"train.stages[{i}] needs epochs and lr ({e})") from None
        if stages[-1].schedule not in SCHEDULES:
            raise InputError(
                f"train.stages[{i}].schedule must be one of {', '.join(SCHEDULES)}, "
                f"got {stages[-1].schedule!r}"
            )
    return stages


def total_steps(stages: list[Stage], steps_per_epoch: int) -> int:
    """Number of optimisation steps in the whole plan."""
    return sum(s.epochs for s in stages) * steps_per_epoch


def locate(step: int, stages: list[Stage], steps_per_epoch: int) -> Position:
    """The stage, epoch and batch of global ``step`` (0-based)."""
    for i, stage in enumerate(stages):
        span = stage.epochs * steps_per_epoch
        if step < span:
            return Position(i, step // steps_per_epoch, step % steps_per_epoch)
        step -= span
    last = len(stages) - 1
    return Position(last, stages[last].epochs, 0)


def stage_start(index: int, stages: list[Stage], steps_per_epoch: int) -> int:
    """Global step at which stage ``index`` begins."""
    return sum(s.epochs for s in stages[:index]) * steps_per_epoch
