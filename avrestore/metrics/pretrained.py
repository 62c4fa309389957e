"""Published metric networks' weights (LPIPS, SyncNet), from user-given paths only.

They are read with ``torch.load(weights_only=True)`` — no arbitrary pickle — and checked
against the network before use, so a wrong file is a clear error, never random weights.
"""

from __future__ import annotations

import os
import pickle
from collections.abc import Iterable

import torch
from torch import nn

from avrestore.errors import InputError
from avrestore.media.files import existing_file


def read_state_dict(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """The tensors of a PyTorch weights file, loaded weights-only."""
    p = existing_file(path)
    try:
        state = torch.load(p, map_location="cpu", weights_only=True)
    except (RuntimeError, ValueError, EOFError, pickle.UnpicklingError) as e:
        raise InputError(f"cannot read weights from {p}: {e.__class__.__name__}") from None
    if not isinstance(state, dict):
        raise InputError(f"{p} does not hold a state dict")
    return state


def load_checked(
    model: nn.Module, state: dict[str, torch.Tensor], needed: Iterable[str], source: str
) -> nn.Module:
    """Load ``state`` into ``model`` once every ``needed`` key is present; frozen, eval mode."""
    missing = sorted(set(needed) - state.keys())
    if missing:
        raise InputError(
            f"{source} lacks {', '.join(missing[:3])}{' …' if len(missing) > 3 else ''}"
        )
    try:
        model.load_state_dict(state, strict=False)
    except RuntimeError as e:
        raise InputError(f"{source} does not fit the network: {e}") from None
    return model.eval().requires_grad_(False)
