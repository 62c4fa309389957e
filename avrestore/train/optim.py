"""A stage's optimiser: Adam over what the stage trains and its learning-rate schedule.

Its own module, free of the data side, so that a trainer without PyAV (the accelerator
machine's ``tools/device_vqgan.py``) runs the same recipe.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from avrestore.errors import InputError

if TYPE_CHECKING:
    from avrestore.train.schema import Stage


def optimiser_for(model: nn.Module, stage: Stage, steps: int) -> tuple[Any, Any]:
    """Adam over the stage's unfrozen parameters and its learning-rate schedule."""
    for name, p in model.named_parameters():
        p.requires_grad_(not name.startswith(stage.freeze))
    params = [p for p in model.parameters() if p.requires_grad]
    if not params:
        raise InputError(f"stage {stage.name} freezes every parameter of its model")
    opt = torch.optim.Adam(params, lr=stage.lr, betas=(0.9, 0.999))
    if stage.schedule == "cosine":
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=steps, eta_min=stage.min_lr)
    else:
        sched = torch.optim.lr_scheduler.ConstantLR(opt, factor=1.0, total_iters=0)
    return opt, sched
