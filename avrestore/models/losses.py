"""Pixel losses for training the restoration networks."""

from __future__ import annotations

import torch
from torch import Tensor


def charbonnier(pred: Tensor, target: Tensor, eps: float = 1e-3) -> Tensor:
    """Mean Charbonnier loss sqrt((pred - target)^2 + eps^2), a smooth L1 (as EDVR, eps 1e-3)."""
    return torch.sqrt((pred - target) ** 2 + eps**2).mean()


def l1(pred: Tensor, target: Tensor) -> Tensor:
    """Mean absolute error (DAVD-Net's loss)."""
    return (pred - target).abs().mean()
