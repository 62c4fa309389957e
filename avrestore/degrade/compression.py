"""H.264 compression artefacts: encode with libx264 at a CRF and decode back."""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np

from avrestore.media.qp import read_qp_maps
from avrestore.media.video import VideoWriter, read_frames


def compress(frames: np.ndarray, crf: int, fps: float = 25.0) -> np.ndarray:
    """Round-trip (T, H, W, 3) uint8 through libx264 (preset medium, yuv420p) at ``crf``.

    The same encoder settings as ``VideoWriter``, so a file written at ``crf`` decodes to
    these frames. Odd sizes, padded for yuv420p, are cropped back.

    Not always bit-exact from run to run: with its AVX-512 code on (an AMD EPYC here),
    libx264's mbtree gave up to 6 different streams in 10 runs of one input, their PSNR to
    the source spread by up to 0.04 dB. With mbtree off, or its C or AVX2 code, it repeats.
    """
    return _round_trip(frames, crf, fps, qp=False)[0]


def compress_with_qp(
    frames: np.ndarray, crf: int, fps: float = 25.0
) -> tuple[np.ndarray, np.ndarray]:
    """``compress``, and the effective QP of each macroblock of each frame (T, ⌈H/16⌉,
    ⌈W/16⌉) uint8 (``media.qp``) read from the same stream: the one encode both come from,
    since a second one may not repeat the first (see ``compress``)."""
    decoded, qp = _round_trip(frames, crf, fps, qp=True)
    assert qp is not None
    return decoded, qp


def _round_trip(
    frames: np.ndarray, crf: int, fps: float, qp: bool
) -> tuple[np.ndarray, np.ndarray | None]:
    t, h, w = frames.shape[:3]
    with tempfile.TemporaryDirectory(prefix="avrestore-crf-") as tmp:
        path = Path(tmp) / "compressed.mp4"
        with VideoWriter(path, fps, crf=crf, preset="medium") as writer:
            writer.write(frames)
        decoded, _ = read_frames(path)
        maps = read_qp_maps(path).effective() if qp else None
    if len(decoded) != t:
        raise RuntimeError(f"libx264 round trip returned {len(decoded)} frames, expected {t}")
    if maps is not None and len(maps) != t:
        raise RuntimeError(f"libx264 round trip gave QP maps of {len(maps)} frames, expected {t}")
    return np.ascontiguousarray(decoded[:, :h, :w]), maps
