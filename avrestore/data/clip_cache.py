"""Files derived from prepared clips, made on first use under a cache folder.

- ``<cache>/hq-<tag>/<clip>.npy``: the decoded frames of ``face.mp4``;
- ``<cache>/crf<Q>-<tag>/<clip>.mp4``: the whole clip compressed once at CRF ``Q`` (the
  ``car`` task's LQ source), ``<cache>/crf<Q>-<tag>/<clip>.npy`` its decoded frames and
  ``<clip>.qp.npy`` the QP of each macroblock of each frame, read from the same stream
  (``clip_qp``, for DAVD-Net's constraining projection);
- ``<cache>/crf<Q>src-<tag>/<clip>.mp4``: the clip's *source video* compressed whole at its
  own size, and ``<clip>.npy`` its frames cut with the clip's ``boxes.npy`` as ``prepare``
  cut the face (what a user's compressed video gives ``restore``).

``<tag>`` (``CACHE_TAG``) names how frames are converted to and from Y'CbCr: caches made by
an older conversion (swscale's, about a level off per channel) are never read as current.

Training reads a few frames at a time from every clip in random order. Decoding H.264 for
each sample would dominate the step, and holding all decoded clips in each DataLoader worker
multiplies the memory by the worker count (2.2 GB of 224² crops for the shared clips). A
``.npy`` file read memory-mapped is decoded once, ever, and shared by all workers through the
page cache. Every file is written atomically, so workers that make the same one at once
both leave a whole file; a cache older than its source is rebuilt.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from itertools import pairwise
from pathlib import Path

import numpy as np

from avrestore.degrade import Degradation, degrade_video
from avrestore.errors import InputError
from avrestore.faces.crop import crop_square
from avrestore.media.files import atomic_path
from avrestore.media.qp import read_qp_maps
from avrestore.media.video import iter_frames, read_frames

CACHE_TAG = "rgb2"  # bump when encoding or decoding changes what cached frames hold


def cache_folder(cache: Path, name: str) -> Path:
    """The folder for derived files of kind ``name`` under ``cache``, tagged (see above)."""
    return cache / f"{name}-{CACHE_TAG}"


def _is_fresh(path: Path, source: Path) -> bool:
    return path.is_file() and path.stat().st_mtime >= source.stat().st_mtime


def save_array(array: np.ndarray, path: Path) -> None:
    """Write ``array`` to the ``.npy`` file ``path`` atomically (folders made as needed)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        np.save(f, array)


def cached_array(path: Path, source: Path, make: Callable[[], np.ndarray]) -> np.ndarray:
    """The array in ``path``, memory-mapped; made by ``make`` when missing or older than
    ``source``."""
    if not _is_fresh(path, source):
        save_array(make(), path)
    return np.load(path, mmap_mode="r")


def cached_arrays(
    paths: Sequence[Path], source: Path, make: Callable[[], Sequence[np.ndarray]]
) -> list[np.ndarray]:
    """The arrays in ``paths``, memory-mapped, that ``make`` makes together (e.g. decoded
    frames and the QP maps of the same encode); all made again and written in order when one
    is missing, older than ``source`` or older than the one before it (then the one before
    was made again alone), so that arrays made together are only ever read together."""
    fresh = all(_is_fresh(p, source) for p in paths) and all(
        _is_fresh(later, earlier) for earlier, later in pairwise(paths)
    )
    if not fresh:
        arrays = make()
        if len(arrays) != len(paths):
            raise ValueError(f"made {len(arrays)} arrays for {len(paths)} files")
        for array, path in zip(arrays, paths, strict=True):
            save_array(array, path)
    return [np.load(p, mmap_mode="r") for p in paths]


def cached_frames(video: Path, cache: Path) -> np.ndarray:
    """The frames (T, H, W, 3) uint8 of ``video``, memory-mapped from ``cache`` (made on
    first use)."""
    return cached_array(cache, video, lambda: read_frames(video)[0])


def compressed_copy(face: Path, copy: Path, crf: int) -> Path:
    """``copy``: the whole clip ``face`` encoded with libx264 at ``crf`` (made on first use)."""
    if not _is_fresh(copy, face):
        copy.parent.mkdir(parents=True, exist_ok=True)
        degrade_video(face, copy, Degradation(crf=crf), progress=False)
    return copy


def clip_frames(clip_dir: Path, cache: Path, crf: int | None = None) -> np.ndarray:
    """The HQ frames of a prepared clip folder, or with ``crf`` those of its compressed copy."""
    face, name = clip_dir / "face.mp4", clip_dir.name
    if crf is None:
        return cached_frames(face, cache_folder(cache, "hq") / f"{name}.npy")
    folder = cache_folder(cache, f"crf{crf}")
    return cached_frames(compressed_copy(face, folder / f"{name}.mp4", crf), folder / f"{name}.npy")


def clip_qp(clip_dir: Path, cache: Path, crf: int) -> np.ndarray:
    """The QP bounding each macroblock of each frame (T, ⌈H/16⌉, ⌈W/16⌉) uint8 of the
    prepared clip's copy compressed at ``crf`` (``clip_frames``), memory-mapped (made on first
    use): ``media.qp``'s effective QP, max(macroblock QP, picture QP), read from the very
    stream whose decoded frames ``clip_frames`` holds, so the two always match (no second
    encode: libx264 is not bit-exact from run to run on every CPU, see ``degrade.compress``)."""
    face, name = clip_dir / "face.mp4", clip_dir.name
    folder = cache_folder(cache, f"crf{crf}")
    copy = compressed_copy(face, folder / f"{name}.mp4", crf)
    return cached_array(folder / f"{name}.qp.npy", copy, lambda: read_qp_maps(copy).effective())


def source_compressed_frames(clip_dir: Path, cache: Path, crf: int, source: Path) -> np.ndarray:
    """The face crops (T, S, S, 3) of ``source`` compressed whole at ``crf``, cut with the
    prepared clip's boxes at its frame rate, memory-mapped (made on first use)."""
    if not source.is_file():
        raise InputError(
            f"{clip_dir.name}: its source video {source} is gone; compressing at the source "
            "needs it (or set data.compress_at to [crop])"
        )
    meta = json.loads((clip_dir / "meta.json").read_text())
    folder = cache_folder(cache, f"crf{crf}src")
    copy = folder / f"{clip_dir.name}.mp4"
    if not _is_fresh(copy, source):
        copy.parent.mkdir(parents=True, exist_ok=True)
        degrade_video(source, copy, Degradation(crf=crf), progress=False)

    def crops() -> np.ndarray:
        boxes, size = np.load(clip_dir / "boxes.npy"), int(meta["size"])
        cut = [
            crop_square(image, boxes[t], size)[0]
            for chunk in iter_frames(copy, fps=float(meta["fps"]), max_frames=len(boxes))
            for t, image in enumerate(chunk.frames, chunk.start)
        ]
        if len(cut) != len(boxes):
            raise InputError(f"{copy} decodes to {len(cut)} frames, the clip has {len(boxes)}")
        return np.stack(cut)

    return cached_array(folder / f"{clip_dir.name}.npy", copy, crops)
