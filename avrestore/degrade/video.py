"""Degrade a video file into another, chunk by chunk, keeping its audio.

Compression is the encoding of the output itself at the chain's CRF (one libx264 pass, the
same settings as ``compress``). Steps without compression are written at
``VISUALLY_LOSSLESS_CRF``.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
from tqdm import tqdm

from avrestore.degrade.chain import Degradation
from avrestore.degrade.resize import downscaled_size, upscale
from avrestore.media.audio import Audio, read_audio
from avrestore.media.files import atomic_path, check_output, existing_file
from avrestore.media.video import VideoWriter, container_format, iter_frames, probe

# CRF 10 re-encodes the GRID clip at 42.5 dB PSNR, far above any degradation we apply (26 to
# 34 dB), in a file 3.5 times smaller than CRF 0 (44.8 dB, all that yuv420p's half-size
# chroma allows); and CRF 0 switches libx264 to the High 4:4:4 Predictive profile, which
# browsers and most players cannot play.
VISUALLY_LOSSLESS_CRF = 10

Transform = Callable[[np.ndarray], np.ndarray]


def degrade_video(
    src: str | os.PathLike,
    dst: str | os.PathLike,
    degradation: Degradation,
    keep_small: bool = False,
    progress: bool = True,
) -> Path:
    """Write ``src`` degraded by ``degradation`` to ``dst`` (atomically), with ``src``'s audio.

    The output keeps the input's size (downscaled frames are upscaled back, bicubic) unless
    ``keep_small``; its frame rate is the input's, resampled to a constant rate.
    """
    src = existing_file(src)
    dst = check_output(dst, src)
    container_format(dst)
    info = probe(src)
    audio = read_audio(src, rate=None, mono=False)
    size = (info.height, info.width)
    upscale_back = degradation.downscale is not None and not keep_small

    def spatial_then_upscale(frames: np.ndarray) -> np.ndarray:
        out = degradation.spatial(frames)
        return upscale(out, size) if upscale_back else out

    with atomic_path(dst) as out:
        if upscale_back and degradation.crf is not None:
            _compress_small_then_upscale(src, out, info.fps, size, degradation, audio, progress)
        else:
            crf = VISUALLY_LOSSLESS_CRF if degradation.crf is None else degradation.crf
            _transcode(src, out, info.fps, crf, audio, spatial_then_upscale, progress, "degrade")
    return dst


def _compress_small_then_upscale(
    src: Path,
    dst: Path,
    fps: float,
    size: tuple[int, int],
    degradation: Degradation,
    audio: Audio | None,
    progress: bool,
) -> None:
    """The codec must see the small frames, so they are compressed into a file first; a
    second pass upscales its decoded frames, cropped of the yuv420p padding."""
    small_h, small_w = downscaled_size(*size, degradation.downscale)

    def crop_then_upscale(frames: np.ndarray) -> np.ndarray:
        return upscale(frames[:, :small_h, :small_w], size)

    with tempfile.TemporaryDirectory(prefix=".avrestore-", dir=dst.parent) as tmp:
        small = Path(tmp) / "small.mp4"
        _transcode(src, small, fps, degradation.crf, None, degradation.spatial, progress, "degrade")
        lossless = VISUALLY_LOSSLESS_CRF
        _transcode(small, dst, fps, lossless, audio, crop_then_upscale, progress, "upscale")


def _transcode(
    src: Path,
    dst: Path,
    fps: float,
    crf: int,
    audio: Audio | None,
    transform: Transform,
    progress: bool,
    label: str,
) -> None:
    """Decode ``src`` at a constant ``fps``, transform each chunk, encode it to ``dst``."""
    info = probe(src)
    # disable=None: a bar (rate, ETA) on an interactive stderr, silence in logs and pipes.
    bar = tqdm(total=info.frame_count, desc=label, unit="frame", disable=None if progress else True)
    with VideoWriter(dst, fps, crf=crf, audio=audio, colour=info.colour) as writer, bar:
        for chunk in iter_frames(src, fps=fps):
            writer.write(transform(chunk.frames))
            bar.update(len(chunk.frames))
