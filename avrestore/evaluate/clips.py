"""One clip as every method sees it: HQ frames, the degraded frames (cached on disk), audio
and teacher landmarks, cut to the evaluated frames.

A clip is degraded whole, once per (clip, task, level), and kept as
``<cache>/evaluate-<tag>/<task>-<level>/<clip>.npy`` (``clip_cache.CACHE_TAG``): libx264's
output varies slightly from run to run on some CPUs (see ``avrestore.degrade.compress``), so
every method, in this run and later ones, must read the same frames; compressing the whole
clip also keeps the artefacts those of a real stream. Downscaling tasks store the small frames.
With ``at_source`` the clip's source video is compressed whole at its own size and cut as
prepared (``clip_cache.source_compressed_frames``): what ``restore`` gets from a user's video.

For a model that reads QP maps (DAVD-Net's CPM) a clip compressed at the crop (``car``) also
keeps, as ``<clip>.qp.npy`` beside its frames, the effective QP of each macroblock of each
frame, read from the stream those frames were decoded from (``compress_with_qp``): a cache
made before without them is made again, frames and maps from one encode. A clip compressed at
the source, or degraded otherwise, has none (its grid is not the crop's).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from avrestore.audio import audio_windows
from avrestore.audio.features import AUDIO_RATE
from avrestore.data.clip_cache import (
    cache_folder,
    cached_array,
    cached_arrays,
    clip_frames,
    source_compressed_frames,
)
from avrestore.data.datasets import read_clip
from avrestore.degrade import Degradation, compress_with_qp, upscale
from avrestore.errors import InputError
from avrestore.media.audio import read_audio


@dataclass(frozen=True, eq=False)
class EvalClip:
    """A clip's first ``frames`` frames: ``hq`` and ``lq`` (the models' input, the size of
    ``hq``) (T, H, W, 3) uint8; ``degraded`` as the degradation left them (small for
    downscaling tasks); ``teacher_landmarks`` (T, 68, 2) from the HQ crops; ``audio`` the
    whole 16 kHz mono track, or None; ``qp`` (T, ⌈H/16⌉, ⌈W/16⌉) uint8 the effective QP of
    each macroblock of the stream ``degraded`` was decoded from, when that stream coded these
    very crops and it was asked for (module docstring), or None."""

    clip_id: str
    fps: float
    hq: np.ndarray
    degraded: np.ndarray
    lq: np.ndarray
    teacher_landmarks: np.ndarray
    audio: np.ndarray | None
    qp: np.ndarray | None = None
    _windows: dict[tuple[int, int], np.ndarray] = field(default_factory=dict, repr=False)

    @property
    def frames(self) -> int:
        """The number of evaluated frames."""
        return len(self.hq)

    @property
    def frames_audio(self) -> np.ndarray | None:
        """The audio of the evaluated frames (for the lip-sync metrics)."""
        if self.audio is None:
            return None
        return self.audio[: round(self.frames / self.fps * AUDIO_RATE)]

    def audio_windows(self, width: int, n_mfcc: int) -> np.ndarray | None:
        """(T, width, n_mfcc) MFCC windows of the evaluated frames, or None without audio;
        computed once per shape, as several methods ask for them."""
        if self.audio is None:
            return None
        if (width, n_mfcc) not in self._windows:
            self._windows[width, n_mfcc] = audio_windows(
                self.audio, AUDIO_RATE, self.frames, self.fps, width, n_mfcc
            )
        return self._windows[width, n_mfcc]


def load_clip(
    folder: Path,
    cache_dir: Path,
    degradation: Degradation,
    key: str,
    max_frames: int | None = None,
    at_source: bool = False,
    qp: bool = False,
) -> EvalClip:
    """The prepared clip in ``folder`` degraded by ``degradation`` (a compression, made on its
    source video with ``at_source``), cut to its first ``max_frames`` frames; the degraded
    clip is kept under ``key`` (``<task>-<level>``). ``qp``: with the QP maps of its stream
    when the degradation is a compression of the crop alone (module docstring)."""
    meta = read_clip(folder)
    hq = clip_frames(folder, cache_dir)
    maps = None
    if at_source:
        if degradation.crf is None or degradation.blur or degradation.downscale:
            raise InputError("compressing at the source is a compression-only protocol (car)")
        degraded = source_compressed_frames(folder, cache_dir, degradation.crf, meta.source)
    else:
        kept = cache_folder(cache_dir, "evaluate") / key / f"{meta.clip_id}.npy"
        face = folder / "face.mp4"
        if qp and degradation.crf is not None and Degradation(crf=degradation.crf) == degradation:
            degraded, maps = _compressed_with_qp(hq, face, meta.fps, degradation.crf, kept)
        else:
            degraded = _degraded(hq, face, meta.fps, degradation, kept)
    t = len(hq) if max_frames is None else min(max_frames, len(hq))
    hq, degraded = np.asarray(hq[:t]), np.asarray(degraded[:t])
    maps = None if maps is None else np.asarray(maps[:t])
    lq = upscale(degraded, hq.shape[1:3]) if degradation.downscale is not None else degraded
    audio = None
    if meta.has_audio:
        track = read_audio(folder / "audio.wav", rate=AUDIO_RATE)
        assert track is not None  # a wav always has its one stream
        audio = track.mono
    landmarks = np.load(folder / "landmarks.npy")[:t]
    return EvalClip(meta.clip_id, meta.fps, hq, degraded, lq, landmarks, audio, maps)


def _degraded(
    hq: np.ndarray, face: Path, fps: float, degradation: Degradation, path: Path
) -> np.ndarray:
    """The whole clip degraded, memory-mapped from ``path`` (made when missing or older than
    the clip's ``face.mp4``)."""
    return cached_array(path, face, lambda: degradation(np.asarray(hq), fps, keep_small=True))


def _compressed_with_qp(
    hq: np.ndarray, face: Path, fps: float, crf: int, path: Path
) -> tuple[np.ndarray, np.ndarray]:
    """The whole clip compressed at ``crf`` (as ``_degraded``) and its QP maps, from one
    encode, memory-mapped from ``path`` and ``<clip>.qp.npy`` beside it."""
    maps = path.with_name(f"{path.stem}.qp.npy")
    frames, qp = cached_arrays(
        [path, maps], face, lambda: compress_with_qp(np.asarray(hq), crf, fps)
    )
    return frames, qp
