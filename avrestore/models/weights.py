"""Model weights on disk: safetensors files that also say which model they belong to.

A weights file carries, in its safetensors metadata, ``model`` — the JSON of the registered
name and its keyword arguments — so ``load_model(path)`` rebuilds the exact network with no
config beside it. Loading never unpickles anything.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from safetensors import safe_open
from safetensors.torch import load_file, save_file
from torch import nn

from avrestore.errors import InputError
from avrestore.media.files import atomic_path
from avrestore.models.registry import REGISTRY, build

# Shipped checkpoints live beside the package in a source checkout (``weights/`` at the top).
WEIGHTS_DIR = Path(
    os.environ.get("AVRESTORE_WEIGHTS", Path(__file__).resolve().parents[2] / "weights")
)


def save_model(
    model: nn.Module, path: str | os.PathLike, spec: dict[str, Any], extra: dict | None = None
) -> None:
    """Write ``model``'s tensors and its ``spec`` ({"type": name, **kwargs}) atomically."""
    tensors = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    meta = {"model": json.dumps(spec), **{k: str(v) for k, v in (extra or {}).items()}}
    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp), metadata=meta)


def load_weights(
    model: nn.Module, path: str | os.PathLike, strict: bool = True
) -> tuple[list[str], list[str]]:
    """Load a safetensors file's tensors into ``model``; the missing and unexpected keys."""
    missing, unexpected = model.load_state_dict(load_file(str(path)), strict=strict)
    return list(missing), list(unexpected)


def read_metadata(path: str | os.PathLike) -> dict[str, str]:
    """The string metadata stored in a safetensors file."""
    p = Path(path)
    if not p.is_file():
        raise InputError(f"no such weights file: {p}")
    try:
        with safe_open(str(p), framework="pt") as f:
            return dict(f.metadata() or {})
    except Exception as e:  # safetensors raises its own error types for damaged files
        raise InputError(f"not a safetensors weights file: {p} ({e})") from None


def load_model(path: str | os.PathLike) -> nn.Module:
    """Rebuild the model a weights file was saved from and load its tensors (eval mode)."""
    meta = read_metadata(path)
    if "model" not in meta:
        raise InputError(f"{path} does not say which model it holds (no 'model' metadata)")
    spec = json.loads(meta["model"])
    name = spec.pop("type")
    if name not in REGISTRY:
        raise InputError(f"{path} holds unknown model {name!r}")
    model = build(name, **spec)
    load_weights(model, path)
    return model.eval()


def weights_path(name_or_path: str) -> Path:
    """The file a weights path or a shipped name (``weights/<name>.safetensors``) stands for."""
    p = Path(name_or_path)
    if p.suffix == ".safetensors" or p.exists():
        return p
    return WEIGHTS_DIR / f"{name_or_path}.safetensors"


def resolve_model(name_or_path: str) -> nn.Module:
    """A model from a weights path, or a shipped checkpoint named ``weights/<name>.safetensors``."""
    p = weights_path(name_or_path)
    if p.is_file():
        return load_model(p)
    raise InputError(f"no weights for {name_or_path!r}: not a file, nor {p}")
