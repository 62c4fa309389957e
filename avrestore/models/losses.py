"""Pixel losses for training the restoration networks."""

from __future__ import annotations

import torch
from pytorch_msssim import ssim
from torch import Tensor


def charbonnier(pred: Tensor, target: Tensor, eps: float = 1e-3) -> Tensor:
    """Mean Charbonnier loss sqrt((pred - target)^2 + eps^2), a smooth L1 (as EDVR, eps 1e-3)."""
    return torch.sqrt((pred - target) ** 2 + eps**2).mean()


def l1(pred: Tensor, target: Tensor) -> Tensor:
    """Mean absolute error (DAVD-Net's loss)."""
    return (pred - target).abs().mean()


def ssim_fp32(x: Tensor, y: Tensor) -> Tensor:
    """SSIM (pytorch_msssim: 11-tap Gaussian window, data range 1) of images (N, 3, H, W), in
    float32 outside autocast: under bf16 the local variances E[x²] − E[x]² cancel to rounding
    (the VQ restorer's eq. 8 read 0.13 under bf16 where float32 gives 0.06 on the same batch,
    and its gradient broke the training)."""
    with torch.autocast(x.device.type, enabled=False):
        return ssim(x.float(), y.float(), data_range=1.0)
