"""Model size and cost: parameters, and multiply-accumulates (MACs) counted by forward hooks.

Counted: every ``nn.Conv2d``, ``nn.ConvTranspose2d``, ``nn.Linear`` and deformable convolution
(its dense product only; the bilinear sampling of the taps is not counted, as in EDVR's and
BasicVSR's tables).
A ``DCNv2Pack``'s offset predictor is an ``nn.Conv2d`` and so counts as well. Bias additions,
activations, pixel shuffles and interpolations are not counted.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from avrestore.models.contract import RestorerContract
from avrestore.models.dcn import ModulatedDeformConv2d

_COUNTED = (nn.Conv2d, nn.Conv3d, nn.ConvTranspose2d, nn.Linear, ModulatedDeformConv2d)


def count_parameters(model: nn.Module) -> int:
    """Number of scalar parameters of ``model``."""
    return sum(p.numel() for p in model.parameters())


def count_macs(model: nn.Module, **inputs: Tensor) -> int:
    """MACs of one forward call ``model(**inputs)``."""
    total = 0

    def hook(module: nn.Module, args: tuple[Tensor, ...], output: Tensor) -> None:
        nonlocal total
        if isinstance(module, nn.ConvTranspose2d):
            # Each input value is spread by (C_out/groups)*kh*kw weights: weight[0]'s size.
            total += args[0].numel() * module.weight[0].numel()
            return
        # Each output value costs one MAC per weight of its filter: (C_in/groups)*kh*kw for a
        # convolution, in_features for a linear layer; weight[0] holds exactly those.
        total += output.numel() * module.weight[0].numel()

    handles = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, _COUNTED)]
    try:
        with torch.inference_mode():
            model(**inputs)
    finally:
        for h in handles:
            h.remove()
    return total


@dataclass(frozen=True)
class Complexity:
    """Size and cost of a registered model."""

    params: int
    gmacs_per_frame: float  # 1e9 MACs per restored output frame
    frames_in: int
    frames_out: int
    size: int  # square frame side the cost was measured at


def frames_per_call(model: nn.Module) -> tuple[int, int]:
    """Frames one forward call reads and returns, from the model's contract (a landmarker
    reads one crop and gives that crop's points)."""
    contract = model.contract
    if isinstance(contract, RestorerContract):
        return contract.frames_in, contract.frames_out
    return 1, 1


def measure(model: nn.Module, size: int = 224) -> Complexity:
    """Parameters and GMACs per output frame of ``model`` on size x size frames (batch 1).

    The model is switched to eval mode.
    """
    model.eval()
    frames_in, frames_out = frames_per_call(model)
    macs = count_macs(model, **model.dummy_inputs(size, size))
    return Complexity(
        params=count_parameters(model),
        gmacs_per_frame=macs / frames_out / 1e9,
        frames_in=frames_in,
        frames_out=frames_out,
        size=size,
    )
