"""The torch device a command runs its models on (``--device``)."""

from __future__ import annotations

import torch

from avrestore.errors import InputError


def torch_device(name: str | torch.device) -> torch.device:
    """``cpu`` or ``cuda[:N]`` as a device, checked to exist; InputError otherwise."""
    try:
        device = torch.device(name)
    except RuntimeError:
        raise InputError(f"--device must be cpu or cuda, got {name!r}") from None
    if device.type not in ("cpu", "cuda"):
        raise InputError(f"--device must be cpu or cuda, got {name!r}")
    if device.type == "cuda" and not torch.cuda.is_available():
        raise InputError(f"--device {name}: this PyTorch has no CUDA device available")
    return device
