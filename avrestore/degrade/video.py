"""Degrade a video file into another, chunk by chunk, keeping its audio.

Compression is the encoding of the output itself at the chain's CRF (one libx264 pass, the
same settings as ``compress``). Steps without compression are written at
``VISUALLY_LOSSLESS_CRF``. Where the codec must see other frames than the output holds (small
frames to be upscaled back, or an odd size, which ``compress`` pads to even and the output
keeps), they are compressed into a temporary file first and a second pass finishes them.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
from tqdm import tqdm

from avrestore.degrade.chain import Degradation
from avrestore.degrade.resize import downscaled_size, upscale
from avrestore.media.audio import Audio, read_audio
from avrestore.media.files import atomic_path, check_output, existing_file, scratch_file
from avrestore.media.video import (
    VideoWriter,
    container_format,
    iter_frames,
    odd_size_note,
    probe,
    warn_if_short,
)

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
    ``keep_small``; its frame rate is the input's, resampled to a constant rate. An odd size
    is kept exactly, in H.264 4:4:4, and said in a note on stderr; so is a file cut short.
    """
    src = existing_file(src)
    dst = check_output(dst, src)
    container_format(dst)
    info = probe(src)
    audio = read_audio(src, rate=None, mono=False)
    size = (info.height, info.width)
    small = size if degradation.downscale is None else downscaled_size(*size, degradation.downscale)
    final = small if keep_small else size
    note = odd_size_note(final[1], final[0])
    with atomic_path(dst) as out:
        if degradation.crf is not None and (final != small or note is not None):
            # The codec must see the frames as ``compress`` does: small, padded to even. The
            # second pass crops the padding off and upscales back if asked.
            def crop_then_finish(frames: np.ndarray) -> np.ndarray:
                return _resized(frames[:, : small[0], : small[1]], final)

            with scratch_file(dst.with_name(f"{dst.stem}.compressed.mp4")) as compressed:
                read = _transcode(
                    src, compressed, info.fps, degradation.crf, None, degradation.spatial,
                    progress, "degrade", exact_size=False,
                )  # fmt: skip
                lossless = VISUALLY_LOSSLESS_CRF
                _transcode(
                    compressed, out, info.fps, lossless, audio, crop_then_finish, progress, "finish"
                )
        else:
            crf = VISUALLY_LOSSLESS_CRF if degradation.crf is None else degradation.crf

            def spatial_then_finish(frames: np.ndarray) -> np.ndarray:
                return _resized(degradation.spatial(frames), final)

            read = _transcode(
                src, out, info.fps, crf, audio, spatial_then_finish, progress, "degrade"
            )
    warn_if_short(info, read, "degraded")
    if note is not None:
        print(f"avrestore: degrade: {note}", file=sys.stderr)
    return dst


def _resized(frames: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Frames upscaled (bicubic) to ``size`` = (H, W), unless already that size."""
    return frames if frames.shape[1:3] == size else upscale(frames, size)


def _transcode(
    src: Path,
    dst: Path,
    fps: float,
    crf: int,
    audio: Audio | None,
    transform: Transform,
    progress: bool,
    label: str,
    exact_size: bool = True,
) -> int:
    """Decode ``src`` at a constant ``fps``, transform each chunk, encode it to ``dst``
    (``exact_size``: see ``VideoWriter``); return the number of frames decoded."""
    info = probe(src)
    # disable=None: a bar (rate, ETA) on an interactive stderr, silence in logs and pipes.
    bar = tqdm(total=info.frame_count, desc=label, unit="frame", disable=None if progress else True)
    writer = VideoWriter(dst, fps, crf=crf, audio=audio, colour=info.colour, exact_size=exact_size)
    with writer, bar:
        for chunk in iter_frames(src, fps=fps):
            writer.write(transform(chunk.frames))
            bar.update(len(chunk.frames))
    return writer.frames_written
