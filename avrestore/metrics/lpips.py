"""LPIPS v0.1 with the AlexNet trunk (Zhang et al. 2018), from user-given weight files.

d(x, y) = Σ_l mean_hw ‖ w_l ⊙ (x̂_l − ŷ_l) ‖², where x̂_l are the channel-unit-normalised
activations of AlexNet's five ReLU outputs on the scaled input and w_l the learned 1×1 heads.
Two files are needed and neither is downloaded: torchvision's AlexNet ImageNet state dict
(its ``features.*`` keys are used) and LPIPS's ``weights/v0.1/alex.pth``
(``lin{l}.model.1.weight``).
"""

from __future__ import annotations

import os

import numpy as np
import torch
from torch import nn

from avrestore.metrics.pretrained import load_checked, read_state_dict

CHANNELS = (64, 192, 384, 256, 256)
# Indices in ``features`` after which LPIPS taps the activations (the five ReLUs).
TAPS = (1, 4, 7, 9, 11)
# Input scaling of LPIPS v0.1: inputs in [−1, 1] are shifted and scaled per RGB channel.
SHIFT = (-0.030, -0.088, -0.188)
SCALE = (0.458, 0.448, 0.450)


def alexnet_features() -> nn.Sequential:
    """torchvision's ``AlexNet.features`` up to the last ReLU, same layer indices."""
    return nn.Sequential(
        nn.Conv2d(3, 64, kernel_size=11, stride=4, padding=2),
        nn.ReLU(),
        nn.MaxPool2d(kernel_size=3, stride=2),
        nn.Conv2d(64, 192, kernel_size=5, padding=2),
        nn.ReLU(),
        nn.MaxPool2d(kernel_size=3, stride=2),
        nn.Conv2d(192, 384, kernel_size=3, padding=1),
        nn.ReLU(),
        nn.Conv2d(384, 256, kernel_size=3, padding=1),
        nn.ReLU(),
        nn.Conv2d(256, 256, kernel_size=3, padding=1),
        nn.ReLU(),
    )


def _unit_channels(x: torch.Tensor, eps: float = 1e-10) -> torch.Tensor:
    return x / (x.pow(2).sum(dim=1, keepdim=True).sqrt() + eps)


class LPIPS(nn.Module):
    """LPIPS distance; ``forward(x, y)`` takes RGB batches (N, 3, H, W) in [0, 1], returns (N,)."""

    def __init__(self) -> None:
        super().__init__()
        self.features = alexnet_features()
        self.lins = nn.ModuleList(nn.Conv2d(c, 1, kernel_size=1, bias=False) for c in CHANNELS)
        self.register_buffer("shift", torch.tensor(SHIFT).view(1, 3, 1, 1))
        self.register_buffer("scale", torch.tensor(SCALE).view(1, 3, 1, 1))

    def _activations(self, x: torch.Tensor) -> list[torch.Tensor]:
        x = ((2 * x - 1) - self.shift) / self.scale
        out = []
        for i, layer in enumerate(self.features):
            x = layer(x)
            if i in TAPS:
                out.append(_unit_channels(x))
        return out

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Distance per image pair (0 for identical images)."""
        total = x.new_zeros(x.shape[0])
        for lin, fx, fy in zip(self.lins, self._activations(x), self._activations(y), strict=True):
            total = total + lin((fx - fy) ** 2).mean(dim=(1, 2, 3))
        return total


def lpips_state_dict(
    alexnet: dict[str, torch.Tensor], heads: dict[str, torch.Tensor]
) -> dict[str, torch.Tensor]:
    """Map torchvision AlexNet keys (``features.N.*``) and LPIPS head keys
    (``lin{l}.model.1.weight``) onto this module's parameter names."""
    state = {k: v for k, v in alexnet.items() if k.startswith("features.")}
    for layer in range(len(CHANNELS)):
        key = f"lin{layer}.model.1.weight"
        if key in heads:
            state[f"lins.{layer}.weight"] = heads[key]
    return state


def load_lpips(
    alexnet_path: str | os.PathLike | None, lin_path: str | os.PathLike | None
) -> LPIPS | None:
    """LPIPS with both weight files loaded, in eval mode; ``None`` unless both are given."""
    if alexnet_path is None or lin_path is None:
        return None
    model = LPIPS()
    state = lpips_state_dict(read_state_dict(alexnet_path), read_state_dict(lin_path))
    needed = [k for k in model.state_dict() if k not in ("shift", "scale")]
    return load_checked(model, state, needed, f"LPIPS weights ({alexnet_path}, {lin_path})")


@torch.no_grad()
def lpips_frames(model: LPIPS, a: np.ndarray, b: np.ndarray, batch: int = 8) -> float:
    """Mean LPIPS over frame pairs of two uint8 RGB videos (T, H, W, 3)."""
    if a.shape != b.shape:
        raise ValueError(f"frame stacks differ in shape: {a.shape} vs {b.shape}")

    def tensor(frames: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(frames.astype(np.float32) / 255).permute(0, 3, 1, 2)

    values = [
        model(tensor(a[i : i + batch]), tensor(b[i : i + batch])) for i in range(0, len(a), batch)
    ]
    return float(torch.cat(values).mean())
