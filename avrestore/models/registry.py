"""The one registry of models: a name (used by ``type:`` in configs) → class and its settings.

Every model is imported explicitly here; nothing scans folders at import time.

What every registered model provides (callers rely on nothing else):
- ``contract``: what it consumes and produces (``avrestore.models.contract``);
- ``dummy_inputs(height, width) -> dict[str, Tensor]``: keyword arguments of one forward call
  (batch 1) on frames of that size, every optional input it uses present (for ``avrestore
  models`` and the benchmarks).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from torch import nn

from avrestore.errors import InputError
from avrestore.models.gavn import GAVN
from avrestore.models.landmark_net import LandmarkNet


@dataclass(frozen=True)
class ModelSpec:
    """A registered model: the class to build and the keyword arguments of this size."""

    cls: type[nn.Module]
    kwargs: dict[str, Any] = field(default_factory=dict)
    summary: str = ""


REGISTRY: dict[str, ModelSpec] = {
    "gavn": ModelSpec(GAVN, {}, "GAVN at paper scale: 64 channels, PCD with 8 deform groups"),
    "gavn-small": ModelSpec(
        GAVN,
        {
            "channels": 32,
            "deform_groups": 2,
            "deblur_blocks": 2,
            "prop_blocks": 1,
            "identity_blocks": 1,
            "up_blocks": (3, 1),
            "audio_hidden": 32,
        },
        "GAVN for CPU training: 32 channels, 2 deform groups, fewer residual blocks",
    ),
    "landmark-net": ModelSpec(
        LandmarkNet, {}, "Audio-assisted PFLD: 68 landmarks from a degraded 112x112 face crop"
    ),
}


def build(name: str, **overrides: Any) -> nn.Module:
    """Build the registered model ``name``; ``overrides`` replace its default arguments."""
    if name not in REGISTRY:
        raise InputError(f"unknown model {name!r}; known: {', '.join(sorted(REGISTRY))}")
    spec = REGISTRY[name]
    return spec.cls(**{**spec.kwargs, **overrides})
