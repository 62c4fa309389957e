"""Atomic checkpoints: weights in safetensors, training state in a weights-only torch file.

A checkpoint is a folder ``<run>/checkpoints/step_<N>/`` holding ``model.safetensors`` and
``state.pt`` (optimizer, scheduler, RNG states, counters). It is written to a temporary folder
and renamed, then ``<run>/checkpoints/latest`` (a one-line text file) is replaced atomically,
so a ``kill -9`` at any moment leaves the previous checkpoint intact.
"""

from __future__ import annotations

import random
import shutil
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from avrestore.errors import InputError
from avrestore.media.files import atomic_dir, atomic_path
from avrestore.models.weights import save_model


def rng_state() -> dict[str, Any]:
    """The Python, NumPy and torch RNG states, as weights-only-loadable values."""
    name, keys, pos, has_gauss, cached = np.random.get_state()
    return {
        "python": random.getstate(),
        "numpy": [name, torch.from_numpy(keys.astype(np.int64)), pos, has_gauss, cached],
        "torch": torch.get_rng_state(),
    }


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore the states saved by :func:`rng_state`."""
    random.setstate(_as_tuple(state["python"]))
    name, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((name, keys.numpy().astype(np.uint32), pos, has_gauss, cached))
    torch.set_rng_state(state["torch"])


def _as_tuple(value: Any) -> Any:
    return tuple(_as_tuple(v) for v in value) if isinstance(value, list | tuple) else value


def save_checkpoint(
    run_dir: Path,
    step: int,
    model: nn.Module,
    spec: dict[str, Any],
    state: dict[str, Any],
    meta: dict[str, Any] | None = None,
) -> Path:
    """Write ``step_<step>`` atomically, point ``latest`` at it, and drop older checkpoints;
    ``meta`` goes into the weights' metadata beside the step."""
    root = run_dir / "checkpoints"
    root.mkdir(parents=True, exist_ok=True)
    final = root / f"step_{step:08d}"
    with atomic_dir(final) as tmp:
        save_model(model, tmp / "model.safetensors", spec, {**(meta or {}), "step": step})
        torch.save({**state, "rng": rng_state()}, tmp / "state.pt")
    with atomic_path(root / "latest") as tmp:
        tmp.write_text(final.name + "\n")
    for old in root.glob("step_*"):
        if old != final and old.is_dir():
            shutil.rmtree(old)
    return final


def latest_checkpoint(run_dir: Path) -> Path | None:
    """The folder named by ``<run>/checkpoints/latest``, or None when there is none."""
    pointer = run_dir / "checkpoints" / "latest"
    if not pointer.is_file():
        return None
    folder = pointer.parent / pointer.read_text().strip()
    return folder if folder.is_dir() else None


def load_state(folder: Path) -> dict[str, Any]:
    """Read a checkpoint's training state with ``weights_only=True`` (no arbitrary pickle);
    InputError, one line, for a damaged or foreign file (it is never unpickled freely)."""
    path = folder / "state.pt"
    try:
        with warnings.catch_warnings():  # torch warns about foreign pickles before it refuses
            warnings.simplefilter("ignore")
            state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # torch raises RuntimeError, UnpicklingError, EOFError, ...
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        if len(first) > 100:
            first = first[: first.rfind(" ", 0, 100)] + " ..."
        raise InputError(
            f"cannot resume from {path}: not a training state this trainer wrote ({first}); "
            "start afresh in another --run-dir"
        ) from None
    if not isinstance(state, dict) or not {"step", "stage", "optimizer"} <= set(state):
        raise InputError(f"cannot resume from {path}: it holds no training state")
    return state
