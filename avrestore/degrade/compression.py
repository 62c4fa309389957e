"""H.264 compression artefacts: encode with libx264 at a CRF and decode back."""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np

from avrestore.media.video import VideoWriter, read_frames


def compress(frames: np.ndarray, crf: int, fps: float = 25.0) -> np.ndarray:
    """Round-trip (T, H, W, 3) uint8 through libx264 (preset medium, yuv420p) at ``crf``.

    The same encoder settings as ``VideoWriter``, so a file written at ``crf`` decodes to
    these frames. Odd sizes, padded for yuv420p, are cropped back.

    Not always bit-exact from run to run: with its AVX-512 code on (an AMD EPYC here),
    libx264's mbtree gave up to 6 different streams in 10 runs of one input, their PSNR to
    the source spread by up to 0.04 dB. With mbtree off, or its C or AVX2 code, it repeats.
    """
    t, h, w = frames.shape[:3]
    with tempfile.TemporaryDirectory(prefix="avrestore-crf-") as tmp:
        path = Path(tmp) / "compressed.mp4"
        with VideoWriter(path, fps, crf=crf, preset="medium") as writer:
            writer.write(frames)
        decoded, _ = read_frames(path)
    if len(decoded) != t:
        raise RuntimeError(f"libx264 round trip returned {len(decoded)} frames, expected {t}")
    return np.ascontiguousarray(decoded[:, :h, :w])
