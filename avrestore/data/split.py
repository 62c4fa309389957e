"""Reproducible train/val/test splits that never share a group (speaker or source video)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

from avrestore.errors import InputError
from avrestore.media.files import atomic_path

SPLITS = ("train", "val", "test")
# The default shares of groups per split and the seed that draws them.
DEFAULT_FRACTIONS, DEFAULT_SEED = (0.8, 0.1, 0.1), 0


def parse_fractions(text: str) -> tuple[float, float, float]:
    """``"0.8,0.1,0.1"`` -> (0.8, 0.1, 0.1); three non-negative shares summing to 1."""
    try:
        parts = tuple(float(x) for x in text.split(","))
    except ValueError:
        parts = ()
    if len(parts) != 3 or min(parts) < 0 or abs(sum(parts) - 1) > 1e-6:
        raise InputError(f"--split wants three shares train,val,test summing to 1, got {text!r}")
    return parts  # type: ignore[return-value]


def assign_groups(groups: Sequence[str], fractions: Sequence[float], seed: int) -> dict[str, str]:
    """``group -> split name``: groups shuffled by ``seed``, then cut by the fractions.

    Counts are rounded, with at least one group for every non-zero val/test share when there
    are enough groups; train takes the rest. Depends only on the set of groups and the seed.
    """
    unique = sorted(set(groups))
    n = len(unique)
    held = [round(f * n) for f in fractions[1:]]
    if n >= len(SPLITS):
        held = [max(c, 1) if f > 0 else c for c, f in zip(held, fractions[1:], strict=True)]
    val = min(held[0], n)
    test = min(held[1], n - val)
    counts = (n - val - test, val, test)
    names = [name for name, c in zip(SPLITS, counts, strict=True) for _ in range(c)]
    import numpy as np  # here, not at the top: `avrestore --help` must not load numpy

    order = np.random.default_rng(seed).permutation(n)
    return {unique[i]: name for i, name in zip(order, names, strict=True)}


def split_clips(
    clip_groups: Mapping[str, str], assignment: Mapping[str, str]
) -> dict[str, list[str]]:
    """Clip ids per split (sorted), from ``clip id -> group`` and ``group -> split``."""
    out: dict[str, list[str]] = {name: [] for name in SPLITS}
    for clip_id, group in sorted(clip_groups.items()):
        out[assignment[group]].append(clip_id)
    return out


def write_splits(folder: Path, splits: Mapping[str, list[str]]) -> None:
    """Write ``folder/{train,val,test}.txt``, one clip id per line, each file atomically."""
    folder.mkdir(parents=True, exist_ok=True)
    for name in SPLITS:
        with atomic_path(folder / f"{name}.txt") as tmp:
            tmp.write_text("".join(f"{c}\n" for c in splits.get(name, [])))
