"""Still images: write RGB frames as PNG and lay frames side by side under captions."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np

from avrestore.errors import InputError
from avrestore.media.files import atomic_path, check_output

_FONT = cv2.FONT_HERSHEY_SIMPLEX
_MAX_FONT_SCALE = 0.6
_MARGIN = 6  # pixels around caption text and between tiles
_BACKGROUND = (255, 255, 255)
_INK = (0, 0, 0)


def write_png(path: str | os.PathLike, image: np.ndarray) -> Path:
    """Write an (H, W, 3) uint8 RGB image to ``path`` as PNG, whole or not at all."""
    out = check_output(path)
    if out.suffix.lower() != ".png":
        raise InputError(f"cannot write PNG to {out}: the name must end in .png")
    with atomic_path(out) as tmp:
        if not cv2.imwrite(str(tmp), cv2.cvtColor(image, cv2.COLOR_RGB2BGR)):
            raise InputError(f"cannot write PNG to {out}")
    return out


def _font_scale(lines: Sequence[str], width: int) -> float:
    """The largest scale (up to the maximum) at which every line fits in ``width``."""
    widest = max((cv2.getTextSize(line, _FONT, 1.0, 1)[0][0] for line in lines), default=0)
    return min(_MAX_FONT_SCALE, (width - 2 * _MARGIN) / max(widest, 1))


def _captioned(tile: np.ndarray, lines: Sequence[str], scale: float) -> np.ndarray:
    """``tile`` above a white strip holding ``lines`` of text, one below the other."""
    w = tile.shape[1]
    line_h = round(cv2.getTextSize("Ag", _FONT, scale, 1)[0][1] * 1.8) + 1
    strip = np.full((_MARGIN + line_h * len(lines), w, 3), _BACKGROUND, np.uint8)
    for i, line in enumerate(lines):
        baseline = _MARGIN + line_h * (i + 1) - line_h // 3
        cv2.putText(strip, line, (_MARGIN, baseline), _FONT, scale, _INK, 1, cv2.LINE_AA)
    return np.concatenate([tile, strip], axis=0)


def side_by_side(tiles: Sequence[np.ndarray], captions: Sequence[Sequence[str]]) -> np.ndarray:
    """Join equal-height (H, W, 3) uint8 RGB tiles left to right, each captioned below by its
    lines of text (a label, then e.g. its PSNR)."""
    if len(tiles) != len(captions) or not tiles:
        raise ValueError(f"need one caption per tile, got {len(tiles)} tiles, {len(captions)}")
    if len({t.shape[0] for t in tiles}) != 1:
        raise ValueError(f"tiles differ in height: {[t.shape for t in tiles]}")
    rows = max(len(c) for c in captions)
    # One font size for all, and every caption padded to the same number of lines, so that
    # the captioned tiles line up.
    scale = min(_font_scale(c, t.shape[1]) for t, c in zip(tiles, captions, strict=True))
    panels = [
        _captioned(t, [*c, *[""] * (rows - len(c))], scale)
        for t, c in zip(tiles, captions, strict=True)
    ]
    gap = np.full((panels[0].shape[0], _MARGIN, 3), _BACKGROUND, np.uint8)
    joined = [part for p in panels for part in (gap, p)][1:]
    return np.concatenate(joined, axis=1)
