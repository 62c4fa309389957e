"""Face landmarks as Gaussian heatmaps: one channel per landmark, the input of H_landmark."""

from __future__ import annotations

import torch
from torch import Tensor


def landmark_heatmaps(landmarks: Tensor, height: int, width: int, sigma: float = 2.0) -> Tensor:
    """Render (B, K, 2) landmarks (x, y in pixels) as (B, K, height, width) Gaussian heatmaps.

    Pixel (row i, column j) has its centre at x = j, y = i; each map peaks at 1 on its landmark.
    A landmark with a non-finite coordinate (no face found) gives an all-zero map.
    """
    if landmarks.ndim != 3 or landmarks.shape[-1] != 2:
        raise ValueError(f"landmarks must be (B, K, 2); got {tuple(landmarks.shape)}")
    valid = torch.isfinite(landmarks).all(dim=-1, keepdim=True)  # (B, K, 1)
    points = torch.where(valid, landmarks, torch.zeros_like(landmarks))
    xs = torch.arange(width, dtype=points.dtype, device=points.device)
    ys = torch.arange(height, dtype=points.dtype, device=points.device)
    # The 2-D Gaussian is separable: an outer product of a row and a column profile.
    gx = torch.exp(-((xs - points[..., :1]) ** 2) / (2 * sigma**2)) * valid  # (B, K, W)
    gy = torch.exp(-((ys - points[..., 1:]) ** 2) / (2 * sigma**2))  # (B, K, H)
    return gy.unsqueeze(-1) * gx.unsqueeze(-2)
