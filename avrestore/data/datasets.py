"""Windows of prepared face clips, degraded for one restoration task, as a torch Dataset.

An item restores the ``2N+1`` HQ frames at the centre of ``2N+5`` consecutive LQ frames (GAVN's
inter-frame temporal module consumes two more on each side; N=1 takes 7 frames in, 3 out):

- ``lq`` (2N+5, 3, h, w) float32 in [0, 1], same size as ``hq`` (``sr`` is upscaled back);
- ``hq`` (2N+1, 3, h, w) float32 in [0, 1];
- ``audio`` (2N+1, W, C) float32 MFCC windows of the HQ frames (zeros without audio): W steps of
  C coefficients, ``audio_window`` x ``n_mfcc`` (21 x 13 unless set: the trainer sets what the
  models it trains read, ``train.data``);
- ``has_audio`` bool; ``landmarks`` (2N+1, 68, 2) float32 in patch pixels: the teacher's
  (dlib on the HQ frames), or with ``landmark_dir`` those a landmarker found on the same LQ
  frames (``<landmark_dir>/<level key>/<clip>.npy``, per clip frame, made by the trainer),
  which is what a restorer gets at deployment;
- ``crop`` (4,) float32 ``top, left, face_h, face_w``: where the patch lies in its whole face
  crop (mirrored with the patch), so that maps of the whole face can be cut the same way;
- with ``qp`` (for a model whose contract declares that side data, DAVD-Net's CPM): ``qp``
  (2N+1, h/4, w/4) int16, the QP bounding each 4x4 transform block of each restored frame in
  the stream its LQ frames were decoded from (``clip_cache.clip_qp``; cut and mirrored with
  the patch: the 4x4 basis rows are symmetric or antisymmetric, so a mirrored block keeps its
  coefficients' magnitudes); -1 everywhere where the LQ frames were not coded on the patch's
  grid (``car`` compressed at the source, on-the-fly steps, other tasks), which leaves the
  CPM off for that item. Patches then lie on the 4-pixel grid (only then: other models keep
  their draws);
- ``clip`` str and ``start`` int, the clip frame of ``lq[0]`` (``hq[0]`` is ``start + 2``).

The degradation is applied to whole frames and the patch cut afterwards, as evaluation
degrades whole frames: a blur of the patch alone would reflect at the patch border.

Training items take a random crop, a coin-flip mirror and levels drawn from a numpy
Generator seeded by ``seed``, the index and an item seed: given as ``dataset[(index, seed)]``
(the trainer's resumable sampler does this), or else one draw from torch's generator, which
DataLoader seeds differently in each worker and epoch. Validation items are fixed: centre crop (or
the full frame), no flip, levels seeded by ``seed`` and the index only.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from avrestore.audio import AUDIO_RATE, MFCC_WINDOW, N_MFCC, audio_windows
from avrestore.data.augment import (
    crop_frames,
    crop_landmarks,
    crop_origin,
    flip_frames,
    flip_landmarks,
)
from avrestore.data.clip_cache import clip_frames, clip_qp, source_compressed_frames
from avrestore.data.tasks import COMPRESSION_WARMUP, Level, Task, get_task
from avrestore.degrade import Degradation, DegradationRanges
from avrestore.errors import InputError
from avrestore.media.audio import read_audio
from avrestore.media.qp import crop_qp

MARGIN = 2  # LQ frames on each side of the restored ones
QP_BLOCK = 4  # the side of the transform blocks a ``qp`` map has one value for
NO_QP = -1  # the ``qp`` of a block not coded on the patch's grid


@dataclass(frozen=True)
class PreparedClip:
    """What a prepared clip's ``meta.json`` says that windows need."""

    clip_id: str
    folder: Path
    frames: int
    fps: float
    size: tuple[int, int]
    has_audio: bool
    source: Path  # the video it was cut from (a relative path is from where prepare ran)


def read_clip(folder: Path) -> PreparedClip:
    """The meta of the prepared clip in ``folder``; InputError if it is not one."""
    try:
        meta = json.loads((folder / "meta.json").read_text())
        size = meta["size"]
        return PreparedClip(
            folder.name,
            folder,
            int(meta["frames"]),
            float(meta["fps"]),
            (size, size) if isinstance(size, int) else (size[1], size[0]),
            bool(meta["has_audio"]),
            Path(meta.get("source", "")),
        )
    except (OSError, ValueError, KeyError) as e:
        raise InputError(f"{folder} is not a prepared clip ({e.__class__.__name__}: {e})") from None


def split_clip_ids(root: Path, split: str) -> list[str]:
    """The clip ids listed in ``root/splits/<split>.txt``."""
    path = root / "splits" / f"{split}.txt"
    if not path.is_file():
        raise InputError(f"no split file {path}; run `avrestore prepare` first")
    return path.read_text().split()


class FaceWindowDataset(Dataset):
    """Windows of the prepared clips of ``root``'s ``split``, degraded for ``task``.

    ``task``: ``car``, ``deblur``, ``sr`` or ``mixed`` (see ``avrestore.data.tasks``);
    ``levels`` replaces the task's degradation ranges; ``compress_at`` (``crop`` and/or
    ``source``, see ``avrestore.data.tasks``) where ``car``'s copy is compressed. ``patch``:
    side of the square crop, None for full frames. ``train`` (default: ``split == "train"``)
    turns on random crops, flips and levels. ``stride`` between window starts defaults to 1
    for training and to 2N+1 otherwise, so validation windows restore every frame once.
    ``cache`` (default ``root/cache``) holds decoded frames and compressed copies
    (``clip_cache``). ``qp``: items carry the QP map of their restored frames (see the module
    docstring); patches and clips must then be whole 4x4 blocks. ``audio_window`` and
    ``n_mfcc``: the MFCC windows of ``audio`` (module docstring).
    """

    def __init__(
        self,
        root: str | os.PathLike,
        split: str = "train",
        task: str = "car",
        n: int = 1,
        patch: int | None = 128,
        train: bool | None = None,
        stride: int | None = None,
        seed: int = 0,
        levels: DegradationRanges | None = None,
        cache: str | os.PathLike | None = None,
        landmark_dir: str | os.PathLike | None = None,
        compress_at: tuple[str, ...] | None = None,
        qp: bool = False,
        audio_window: int = MFCC_WINDOW,
        n_mfcc: int = N_MFCC,
    ) -> None:
        self.root = Path(root)
        self.task: Task = get_task(task)
        if levels is not None or compress_at is not None:
            self.task = Task(
                (levels,) if levels is not None else self.task.chains,
                self.task.source_crf,
                compress_at or self.task.compress_at,
            )
        if n < 0 or (stride is not None and stride < 1):
            raise InputError(f"need N >= 0 and a stride >= 1, got N={n} and stride={stride}")
        self.n, self.patch, self.seed, self.qp = n, patch, seed, qp
        self.audio_window, self.n_mfcc = audio_window, n_mfcc
        self.grid = QP_BLOCK if qp else 1
        self.landmark_dir = None if landmark_dir is None else Path(landmark_dir)
        self.train = split == "train" if train is None else train
        self.length = 2 * n + 1 + 2 * MARGIN
        stride = stride if stride is not None else 1 if self.train else 2 * n + 1
        self.cache = Path(cache) if cache is not None else self.root / "cache"
        self.clips = [read_clip(self.root / "clips" / c) for c in split_clip_ids(self.root, split)]
        if patch is not None:  # a patch too large fails here rather than in a worker
            for clip in self.clips:
                crop_origin(clip.size, patch, None)
        if qp:
            sides = {patch} if patch is not None else {s for c in self.clips for s in c.size}
            if any(side % QP_BLOCK for side in sides):
                what = f"a {patch}-pixel patch" if patch is not None else "whole crops"
                raise InputError(
                    f"a model reading QP maps needs patches of whole {QP_BLOCK}x{QP_BLOCK} "
                    f"blocks; {what} of {self.root} ({sorted(sides)}) are not"
                )
        self.windows = [
            (i, start)
            for i, clip in enumerate(self.clips)
            for start in range(0, clip.frames - self.length + 1, stride)
        ]
        if not self.windows:
            raise InputError(
                f"split {split!r} of {self.root} has no clip of {self.length} frames or more"
            )
        self._arrays: dict[tuple[str, str | None], np.ndarray] = {}
        self._audio: dict[str, np.ndarray] = {}

    def __len__(self) -> int:
        return len(self.windows)

    def __getstate__(self) -> dict:
        # Worker processes open their own memory maps; pickling one would copy its frames.
        return {**self.__dict__, "_arrays": {}, "_audio": {}}

    def build_caches(self) -> None:
        """Make every clip's caches now rather than on first use: decoded (and for ``car``
        compressed) frames on disk, audio windows in memory (forked workers inherit them)."""
        for clip in self.clips:
            for at in {level.at for level in self.task.levels()} | {None}:
                self._frames(clip, at)
            if any(self._has_qp(level) for level in self.task.levels()):
                self._qp_maps(clip)
            if clip.has_audio:
                self.audio_windows(clip)

    def _frames(self, clip: PreparedClip, at: str | None) -> np.ndarray:
        """HQ frames (``at`` None), or the task's compressed copy made ``at`` crop or source."""
        crf = self.task.source_crf
        if at == "source" and crf is not None:
            make = partial(source_compressed_frames, clip.folder, self.cache, crf, clip.source)
        else:
            make = partial(clip_frames, clip.folder, self.cache, crf if at == "crop" else None)
        return self._per_frame(clip, at, make, "its video decodes to {} frames")

    def _has_qp(self, level: Level) -> bool:
        """Whether the LQ frames of ``level`` are a stream's decoded frames on the crop's own
        grid (``car`` compressed at the crop, nothing after), so that its QP maps bound them."""
        crf = self.task.source_crf
        return (
            self.qp
            and crf is not None
            and level.at == "crop"
            and level.degradation == Degradation()
        )

    def _qp_maps(self, clip: PreparedClip) -> np.ndarray:
        """The effective QP of each macroblock of each frame of the crop-compressed copy."""
        crf = self.task.source_crf
        assert crf is not None
        make = partial(clip_qp, clip.folder, self.cache, crf)
        return self._per_frame(clip, "qp", make, "its compressed copy has QP maps for {} frames")

    def _per_frame(
        self, clip: PreparedClip, kind: str | None, make: Callable[[], np.ndarray], says: str
    ) -> np.ndarray:
        """``make()``'s array of one row per frame of ``clip``, kept for the dataset's life;
        InputError if its length is not the clip's frame count (``says`` words the length)."""
        key = (clip.clip_id, kind)
        if key not in self._arrays:
            array = make()
            if len(array) != clip.frames:
                raise InputError(
                    f"{clip.folder}: {says.format(len(array))}, meta.json says {clip.frames}"
                )
            self._arrays[key] = array
        return self._arrays[key]

    def audio_windows(self, clip: PreparedClip) -> np.ndarray:
        """The MFCC window (``audio_window``, ``n_mfcc``) of every frame of ``clip`` (which
        must have audio)."""
        if clip.clip_id not in self._audio:
            audio = read_audio(clip.folder / "audio.wav", rate=AUDIO_RATE)
            assert audio is not None  # a wav always has its one stream
            self._audio[clip.clip_id] = audio_windows(
                audio.mono, AUDIO_RATE, clip.frames, clip.fps, self.audio_window, self.n_mfcc
            )
        return self._audio[clip.clip_id]

    def _rng(self, index: int, item_seed: int | None) -> np.random.Generator:
        if not self.train:
            return np.random.default_rng([self.seed, index])
        if item_seed is None:
            item_seed = int(torch.randint(2**62, ()))
        return np.random.default_rng([self.seed, index, item_seed])

    def __getitem__(self, key: int | tuple[int, int]) -> dict:
        """The window ``key``, or ``(index, item_seed)`` to fix a training item's randomness."""
        index, item_seed = key if isinstance(key, tuple) else (key, None)
        clip_index, start = self.windows[index]
        clip = self.clips[clip_index]
        rng = self._rng(index, item_seed)
        level = self.task.sample(rng)
        degradation = level.degradation
        end, centre = start + self.length, slice(start + MARGIN, start + self.length - MARGIN)
        # Compressing on the fly: encode warm-up frames first so the window is mid-stream.
        first = max(0, start - COMPRESSION_WARMUP) if degradation.crf is not None else start
        lq = self._frames(clip, level.at)[first:end]
        hq = self._frames(clip, None)[centre]
        landmarks = self._landmarks(clip, level)[centre]
        lq = degradation(np.ascontiguousarray(lq), clip.fps)[-self.length :]  # no warm-up

        h, w = clip.size
        origin = (0, 0)
        if self.patch is not None:
            origin = crop_origin(clip.size, self.patch, rng if self.train else None, self.grid)
            lq, hq = crop_frames(lq, origin, self.patch), crop_frames(hq, origin, self.patch)
            landmarks = crop_landmarks(landmarks, origin)
        top, left = origin
        qp = self._item_qp(clip, level, centre, origin, hq.shape[1:3]) if self.qp else None
        if self.train and rng.random() < 0.5:
            lq, hq = flip_frames(lq), flip_frames(hq)
            landmarks = flip_landmarks(landmarks, hq.shape[2])
            left = w - hq.shape[2] - left  # the patch's place in the mirrored face
            qp = None if qp is None else qp[..., ::-1]
        extra = {} if qp is None else {"qp": torch.from_numpy(np.ascontiguousarray(qp))}
        return {
            "lq": _to_tensor(lq),
            "hq": _to_tensor(hq),
            "audio": self._item_audio(clip, centre),
            "has_audio": clip.has_audio,
            "landmarks": torch.from_numpy(np.array(landmarks, np.float32)),
            "crop": torch.tensor([top, left, h, w], dtype=torch.float32),
            "clip": clip.clip_id,
            "start": start,
            **extra,
        }

    def _item_qp(
        self,
        clip: PreparedClip,
        level: Level,
        centre: slice,
        origin: tuple[int, int],
        size: tuple[int, int],
    ) -> np.ndarray:
        """(2N+1, h/4, w/4) int16: the QP of each 4x4 block of the restored frames' patch of
        ``size`` at ``origin``, or ``NO_QP`` when ``level`` was not coded on its grid."""
        shape = (centre.stop - centre.start, size[0] // QP_BLOCK, size[1] // QP_BLOCK)
        if not self._has_qp(level):
            return np.full(shape, NO_QP, np.int16)
        maps = crop_qp(self._qp_maps(clip)[centre], *origin, *size, step=QP_BLOCK)
        return maps.astype(np.int16)

    def _landmarks(self, clip: PreparedClip, level: Level) -> np.ndarray:
        """(T, 68, 2) landmarks of every frame of ``clip``: teacher or predicted (see above)."""
        if self.landmark_dir is None:
            return np.load(clip.folder / "landmarks.npy", mmap_mode="r")
        path = self.landmark_dir / self.task.key(level) / f"{clip.clip_id}.npy"
        if not path.is_file():
            raise InputError(f"no predicted landmarks {path}; the trainer makes them first")
        return np.load(path, mmap_mode="r")

    def lq_clip(self, clip: PreparedClip, level: Level) -> np.ndarray:
        """The whole clip's LQ frames (T, H, W, 3) at one level without on-the-fly
        compression (what a landmarker is run on to make ``landmark_dir``)."""
        if level.degradation.crf is not None:
            raise InputError("predicted landmarks need a fixed LQ clip: no on-the-fly compression")
        return level.degradation(np.asarray(self._frames(clip, level.at)), clip.fps)

    def _item_audio(self, clip: PreparedClip, centre: slice) -> torch.Tensor:
        if not clip.has_audio:
            return torch.zeros(centre.stop - centre.start, self.audio_window, self.n_mfcc)
        return torch.from_numpy(np.array(self.audio_windows(clip)[centre], np.float32))


def _to_tensor(frames: np.ndarray) -> torch.Tensor:
    """(T, H, W, 3) uint8 → (T, 3, H, W) float32 in [0, 1]."""
    # In numpy: small torch ops in a busy DataLoader worker can stall in its thread pool.
    out = np.empty((len(frames), 3, *frames.shape[1:3]), np.float32)
    np.multiply(frames.transpose(0, 3, 1, 2), np.float32(1 / 255), out=out)
    return torch.from_numpy(out)
