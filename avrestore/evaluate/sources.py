"""Which clips an evaluation scores: the folders of prepared clips and where caches go.

DATA is either a prepared folder (``clips/`` and ``splits/``, see ``avrestore.data.prepare``)
or a folder of raw videos. Raw videos are prepared into the cache with the same machinery
(``ClipPreparer``, default options, only the first ``max_frames`` frames when a limit is
given) and kept there, so a rerun skips them; for a split, the speakers are assigned as
``avrestore prepare`` does with its defaults. Caches (decoded HQ frames, degraded clips) go
to ``--cache``, by default ``DATA/cache`` for a prepared folder (shared with training) and a
per-folder directory under ``$XDG_CACHE_HOME/avrestore/evaluate`` for raw videos, whose
folder is never written to.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

from tqdm import tqdm

from avrestore.data.datasets import split_clip_ids
from avrestore.data.layouts import ClipSource, find_clips
from avrestore.data.prepare import ClipPreparer, ClipRejected, PrepareOptions
from avrestore.data.split import DEFAULT_FRACTIONS, DEFAULT_SEED, SPLITS, assign_groups
from avrestore.errors import InputError
from avrestore.media.files import atomic_dir, user_cache

ALL = "all"


@dataclass(frozen=True)
class ClipSet:
    """Prepared clip folders to score, the cache folder for their derived frames, and the raw
    clips that could not be prepared (id → reason)."""

    folders: list[Path]
    cache: Path
    rejected: dict[str, str] = field(default_factory=dict)


def is_prepared(data: Path) -> bool:
    """Whether ``data`` has the prepared layout (``clips/`` and ``splits/``)."""
    return (data / "clips").is_dir() and (data / "splits").is_dir()


def default_raw_cache(data: Path) -> Path:
    """The user cache folder of a raw video folder, named after it and its resolved path."""
    digest = hashlib.sha1(str(data.resolve()).encode()).hexdigest()[:8]
    return user_cache("evaluate", f"{data.resolve().name}-{digest}")


def select_clips(
    data: Path, split: str | None, max_frames: int | None, cache: Path | None = None
) -> ClipSet:
    """The clips of ``split`` (``None``: the test split of a prepared folder, every raw video
    otherwise; ``"all"``: every clip) and the cache folder; InputError if there are none."""
    if not data.is_dir():
        raise InputError(f"data folder does not exist: {data}")
    if split is not None and split not in (*SPLITS, ALL):
        raise InputError(f"--clips must be one of {', '.join((*SPLITS, ALL))}, got {split!r}")
    if is_prepared(data):
        clip_set = _prepared(data, split or "test", cache or data / "cache")
    else:
        clip_set = _raw(data, split or ALL, max_frames, cache or default_raw_cache(data))
    if not clip_set.folders:
        raise InputError(f"no clips to evaluate in {data} (--clips {split or 'default'})")
    return clip_set


def _prepared(data: Path, split: str, cache: Path) -> ClipSet:
    if split == ALL:
        ids = sorted(p.name for p in (data / "clips").iterdir() if (p / "meta.json").is_file())
    else:
        ids = split_clip_ids(data, split)
    return ClipSet([data / "clips" / i for i in ids], cache)


def _raw(data: Path, split: str, max_frames: int | None, cache: Path) -> ClipSet:
    """Prepare the split's raw videos not yet in ``cache`` (the crops of the first
    ``max_frames`` frames live apart from whole clips), then list those that were kept."""
    sources = find_clips(data, "folder")
    if split != ALL:
        assignment = assign_groups([c.group for c in sources], DEFAULT_FRACTIONS, DEFAULT_SEED)
        sources = [c for c in sources if assignment[c.group] == split]
    root = cache / ("faces" if max_frames is None else f"faces-first{max_frames}")
    clips_dir = root / "clips"
    todo = [c for c in sources if not (clips_dir / c.clip_id / "meta.json").is_file()]
    rejected = _prepare(todo, clips_dir, max_frames) if todo else {}
    kept = [clips_dir / c.clip_id for c in sources if c.clip_id not in rejected]
    return ClipSet(kept, root, rejected)


def _prepare(todo: list[ClipSource], clips_dir: Path, max_frames: int | None) -> dict[str, str]:
    """Prepare each clip into ``clips_dir/<id>`` (whole or not at all); id → reason of those
    rejected (they are tried again on the next run)."""
    try:
        clips_dir.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise InputError(
            f"cannot create the cache {clips_dir}: {e.strerror}; give --cache"
        ) from None
    preparer = ClipPreparer(PrepareOptions(max_frames=max_frames))
    rejected = {}
    for clip in tqdm(todo, desc="prepare", unit="clip", disable=None):
        try:
            with atomic_dir(clips_dir / clip.clip_id) as tmp:
                preparer.prepare(clip, tmp)
        except (ClipRejected, InputError) as e:
            rejected[clip.clip_id] = str(e)
    return rejected
