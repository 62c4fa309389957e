"""The one registry of models: a name (used by ``type:`` in configs) → class and its settings.

Every model is imported explicitly here; nothing scans folders at import time.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from torch import nn

from avrestore.errors import InputError


@dataclass(frozen=True)
class ModelSpec:
    """A registered model: the class to build and the keyword arguments of this size."""

    cls: type[nn.Module]
    kwargs: dict[str, Any] = field(default_factory=dict)
    summary: str = ""


REGISTRY: dict[str, ModelSpec] = {}


def build(name: str, **overrides: Any) -> nn.Module:
    """Build the registered model ``name``; ``overrides`` replace its default arguments."""
    if name not in REGISTRY:
        raise InputError(f"unknown model {name!r}; known: {', '.join(sorted(REGISTRY))}")
    spec = REGISTRY[name]
    return spec.cls(**{**spec.kwargs, **overrides})
