"""The quality-against-speed plot: PSNR gain over the input (bicubic for sr) against seconds
per frame (log scale), a marker per checkpoint, a colour per task. Drawn with OpenCV into an
RGB array, since matplotlib is not a dependency."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from avrestore.evaluate.methods import BICUBIC, INPUT
from avrestore.leaderboard.run import Board

WIDTH, HEIGHT = 1000, 600
# The plot area's margins: tick labels and axis titles on the left and below, the title
# above, the legend on the right.
_LEFT, _RIGHT, _TOP, _BOTTOM = 80, 230, 50, 70
_FONT = cv2.FONT_HERSHEY_SIMPLEX
_SMALL, _LARGE = 0.5, 0.6
_INK, _GRID, _ZERO, _WHITE = (30, 30, 30), (225, 225, 225), (120, 120, 120), (255, 255, 255)
_RADIUS = 6
# Tableau's blue, orange and green; grey for a task not named here.
_COLOURS = {"car": (31, 119, 180), "deblur": (255, 127, 14), "sr": (44, 160, 44)}
_OTHER = (127, 127, 127)


@dataclass(frozen=True)
class Point:
    """A checkpoint's seconds per frame and PSNR gain over its task's input (bicubic for sr),
    in dB."""

    task: str
    label: str
    seconds: float
    gain: float


def points(boards: Iterable[Board]) -> list[Point]:
    """One point per checkpoint of ``boards``."""
    found = []
    for board in boards:
        # The gain over what needs no model: bicubic where the task downscales, else the input.
        labels = [r.label for r in board.rows]
        reference = BICUBIC if BICUBIC in labels else INPUT
        base = next(r for r in board.rows if r.label == reference).entry["scores"]["psnr"]
        for row in board.rows:
            if row.checkpoint is not None:
                scores = row.entry["scores"]
                found.append(Point(board.task, row.label, scores["seconds"], scores["psnr"] - base))
    return found


def speed_plot(boards: Sequence[Board]) -> np.ndarray:
    """The (HEIGHT, WIDTH, 3) uint8 RGB plot of every checkpoint of ``boards``."""
    pts = points(boards)
    image = np.full((HEIGHT, WIDTH, 3), _WHITE, np.uint8)
    x0, x1, y0, y1 = _LEFT, WIDTH - _RIGHT, _TOP, HEIGHT - _BOTTOM
    xs = _log_axis([p.seconds for p in pts] or [0.1])
    ys = _linear_axis([0.0, *(p.gain for p in pts)])

    def px(seconds: float) -> int:
        lo, hi = math.log10(xs[0]), math.log10(xs[-1])
        return round(x0 + (math.log10(seconds) - lo) / (hi - lo) * (x1 - x0))

    def py(gain: float) -> int:
        return round(y1 - (gain - ys[0]) / (ys[-1] - ys[0]) * (y1 - y0))

    for tick in xs:
        x = px(tick)
        cv2.line(image, (x, y0), (x, y1), _GRID, 1)
        _text(image, _number(tick), (x, y1 + 8), _SMALL, "top")
    for tick in ys:
        y = py(tick)
        cv2.line(image, (x0, y), (x1, y), _GRID, 1)
        _text(image, _number(tick), (x0 - 8, y), _SMALL, "right")
    _dashed(image, (x0, py(0.0)), (x1, py(0.0)), _ZERO)  # no gain: the input's PSNR
    cv2.rectangle(image, (x0, y0), (x1, y1), _INK, 1)
    _text(image, "seconds per frame (log scale)", ((x0 + x1) // 2, HEIGHT - 24), _LARGE, "top")
    _vertical_text(image, "PSNR gain over input / bicubic (dB)", (20, (y0 + y1) // 2))
    title = "Quality against speed of every checkpoint"
    _text(image, title, ((x0 + x1) // 2, 18), _LARGE, "top")

    placed: list[tuple[int, int, int, int]] = [
        (
            px(p.seconds) - _RADIUS,
            py(p.gain) - _RADIUS,
            px(p.seconds) + _RADIUS,
            py(p.gain) + _RADIUS,
        )
        for p in pts
    ]
    for p in pts:
        centre = (px(p.seconds), py(p.gain))
        cv2.circle(image, centre, _RADIUS, _COLOURS.get(p.task, _OTHER), -1, cv2.LINE_AA)
        cv2.circle(image, centre, _RADIUS, _INK, 1, cv2.LINE_AA)
    for p in pts:
        box = _label_box(p.label, (px(p.seconds), py(p.gain)), (x0, y0, x1, y1), placed)
        placed.append(box)
        _text(image, p.label, (box[0], box[3]), _SMALL, "baseline")

    for i, board in enumerate(boards):
        y = y0 + 14 + 26 * i
        colour = _COLOURS.get(board.task, _OTHER)
        cv2.circle(image, (x1 + 24, y), _RADIUS, colour, -1, cv2.LINE_AA)
        cv2.circle(image, (x1 + 24, y), _RADIUS, _INK, 1, cv2.LINE_AA)
        _text(image, f"{board.task}, level {board.level}", (x1 + 38, y), _SMALL, "left")
    return image


def _log_axis(values: list[float]) -> list[float]:
    """Ticks of a log axis holding ``values``: whole decades, with 2 and 5 between them when
    it spans at most two (so that a short axis has labels too)."""
    lo = math.floor(math.log10(min(values)) - 0.1)
    hi = math.ceil(math.log10(max(values)) + 0.1)
    steps = (1, 2, 5) if hi - lo <= 2 else (1,)
    ticks = [m * 10.0**e for e in range(lo, hi) for m in steps]
    return [*ticks, 10.0**hi]


def _linear_axis(values: list[float]) -> list[float]:
    """Ticks of a linear axis holding ``values`` with a margin: 1, 2, 2.5 or 5 times a power
    of ten apart, about six of them."""
    lo, hi = min(values), max(values)
    pad = 0.1 * (hi - lo) or 0.5
    lo, hi = lo - pad, hi + pad
    raw = (hi - lo) / 6
    power = 10.0 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 2.5, 5, 10) if m * power >= raw)
    first, last = math.floor(lo / step), math.ceil(hi / step)
    return [k * step for k in range(first, last + 1)]


def _number(value: float) -> str:
    """A tick label: no float noise, and no ``-0``."""
    return f"{round(value, 6) + 0.0:g}"


def _text(image: np.ndarray, text: str, at: tuple[int, int], scale: float, anchor: str) -> None:
    """Draw ``text`` anchored at ``at``: ``top`` (centred below), ``right`` or ``left``
    (vertically centred), or ``baseline`` (its bottom-left corner)."""
    (w, h), _ = cv2.getTextSize(text, _FONT, scale, 1)
    x, y = at
    origin = {
        "top": (x - w // 2, y + h),
        "right": (x - w, y + h // 2),
        "left": (x, y + h // 2),
        "baseline": (x, y),
    }[anchor]
    cv2.putText(image, text, origin, _FONT, scale, _INK, 1, cv2.LINE_AA)


def _vertical_text(image: np.ndarray, text: str, centre: tuple[int, int]) -> None:
    """Draw ``text`` turned a quarter to the left, centred at ``centre``."""
    (w, h), base = cv2.getTextSize(text, _FONT, _LARGE, 1)
    strip = np.full((h + base + 4, w + 4, 3), _WHITE, np.uint8)
    cv2.putText(strip, text, (2, h + 2), _FONT, _LARGE, _INK, 1, cv2.LINE_AA)
    turned = np.rot90(strip)
    top, left = centre[1] - turned.shape[0] // 2, centre[0] - turned.shape[1] // 2
    image[top : top + turned.shape[0], left : left + turned.shape[1]] = turned


def _dashed(
    image: np.ndarray, start: tuple[int, int], end: tuple[int, int], colour: tuple[int, ...]
) -> None:
    """A horizontal dashed line from ``start`` to ``end``."""
    for x in range(start[0], end[0], 12):
        cv2.line(image, (x, start[1]), (min(x + 6, end[0]), start[1]), colour, 1)


def _label_box(
    text: str,
    centre: tuple[int, int],
    area: tuple[int, int, int, int],
    placed: list[tuple[int, int, int, int]],
) -> tuple[int, int, int, int]:
    """Where a marker's label goes (x0, y0, x1, y1): beside the marker, inside ``area`` and
    clear of the other labels and markers if one of the tried places is."""
    (w, h), _ = cv2.getTextSize(text, _FONT, _SMALL, 1)
    cx, cy = centre
    gap = _RADIUS + 4
    tried = [
        (cx + gap, cy - h // 2),  # right
        (cx + gap, cy - gap - h),  # above right
        (cx + gap, cy + gap),  # below right
        (cx - gap - w, cy - h // 2),  # left
        (cx - gap - w, cy - gap - h),
        (cx - gap - w, cy + gap),
        *((cx + gap, cy + gap + k * (h + 4)) for k in range(1, 6)),
    ]
    boxes = [(x, y, x + w, y + h) for x, y in tried]
    inside = [
        b for b in boxes if b[0] > area[0] and b[1] > area[1] and b[2] < area[2] and b[3] < area[3]
    ]
    free = [b for b in inside if not any(_overlap(b, other) for other in placed)]
    return (free or inside or boxes)[0]


def _overlap(a: tuple[int, int, int, int], b: tuple[int, int, int, int]) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]
