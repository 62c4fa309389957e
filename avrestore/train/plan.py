"""The staged schedule: which stage, epoch and batch a global step falls in.

GAVN trains in steps (the paper's "two-stage training"): the temporal module alone with its own
head; then identity + reconstruction with the temporal module frozen (warm-up); then all of it.
A config lists these as ``train.stages`` (``schema.Stage``); each names its epochs, learning
rate, model switches, the parameter prefixes it freezes, and whether it starts from the
previous stage's weights.
Knowing the global step is enough to resume anywhere in this plan.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from avrestore.train.schema import Stage


@dataclass(frozen=True)
class Position:
    """Where a global step falls: stage index, epoch within the stage, batch within the epoch."""

    stage: int
    epoch: int
    batch: int


def total_steps(stages: Sequence[Stage], steps_per_epoch: int) -> int:
    """Number of optimisation steps in the whole plan."""
    return sum(s.epochs for s in stages) * steps_per_epoch


def locate(step: int, stages: Sequence[Stage], steps_per_epoch: int) -> Position:
    """The stage, epoch and batch of global ``step`` (0-based)."""
    for i, stage in enumerate(stages):
        span = stage.epochs * steps_per_epoch
        if step < span:
            return Position(i, step // steps_per_epoch, step % steps_per_epoch)
        step -= span
    last = len(stages) - 1
    return Position(last, stages[last].epochs, 0)


def stage_start(index: int, stages: Sequence[Stage], steps_per_epoch: int) -> int:
    """Global step at which stage ``index`` begins."""
    return sum(s.epochs for s in stages[:index]) * steps_per_epoch
