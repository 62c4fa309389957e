"""A degradation chain (blur, then downscale, then compression) and random levels for training.

The order follows real pipelines: optics blur the scene, the camera or a platform shrinks the
picture, and the codec compresses what is left. The chain itself has no randomness; levels
are drawn by ``DegradationRanges.sample`` from a numpy Generator, so a seed fixes them. Blur
and resizing are then bit-exact, compression up to libx264's jitter (see ``compress``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from avrestore.degrade.blur import blur, gaussian_sigma
from avrestore.degrade.compression import compress
from avrestore.degrade.resize import downscale, upscale
from avrestore.errors import InputError

MAX_CRF = 51  # libx264's 8-bit scale


@dataclass(frozen=True)
class Degradation:
    """Levels of one degradation chain; ``None`` leaves a step out.

    ``blur``: odd Gaussian kernel size; ``downscale``: integer factor; ``crf``: libx264 CRF.
    """

    blur: int | None = None
    downscale: int | None = None
    crf: int | None = None

    def __post_init__(self) -> None:
        if self.blur is not None and (self.blur < 3 or self.blur % 2 == 0):
            raise InputError(f"blur kernel size must be odd and at least 3, got {self.blur}")
        if self.downscale is not None and self.downscale < 2:
            raise InputError(f"downscale factor must be at least 2, got {self.downscale}")
        if self.crf is not None and not 0 <= self.crf <= MAX_CRF:
            raise InputError(f"CRF must be in 0..{MAX_CRF}, got {self.crf}")

    def __str__(self) -> str:
        steps = []
        if self.blur is not None:
            steps.append(f"blur k={self.blur} (sigma {gaussian_sigma(self.blur):.2f})")
        if self.downscale is not None:
            steps.append(f"downscale x{self.downscale}")
        if self.crf is not None:
            steps.append(f"H.264 CRF {self.crf}")
        return ", ".join(steps) or "none"

    def spatial(self, frames: np.ndarray) -> np.ndarray:
        """The per-frame steps before compression: blur, then downscale."""
        if self.blur is not None:
            frames = blur(frames, self.blur)
        if self.downscale is not None:
            frames = downscale(frames, self.downscale)
        return frames

    def __call__(
        self, frames: np.ndarray, fps: float = 25.0, *, keep_small: bool = False
    ) -> np.ndarray:
        """Degrade (T, H, W, 3) uint8 frames; a downscaled result is brought back to (H, W)
        with bicubic upscaling, the model's input, unless ``keep_small``."""
        out = self.spatial(frames)
        if self.crf is not None:
            out = compress(out, self.crf, fps)
        if self.downscale is not None and not keep_small:
            out = upscale(out, frames.shape[1:3])
        return out


Range = tuple[int, int]


@dataclass(frozen=True)
class DegradationRanges:
    """Inclusive (low, high) ranges to draw ``Degradation`` levels from; ``None`` leaves a
    step out. Blur draws odd kernel sizes only."""

    blur: Range | None = None
    downscale: Range | None = None
    crf: Range | None = None

    def sample(self, rng: np.random.Generator) -> Degradation:
        """Draw one level per step, uniformly from its range."""
        return Degradation(
            blur=_draw(rng, self.blur, odd=True),
            downscale=_draw(rng, self.downscale),
            crf=_draw(rng, self.crf),
        )

    def every_level(self) -> list[Degradation]:
        """Every degradation ``sample`` can draw."""
        return [
            Degradation(blur=b, downscale=d, crf=c)
            for b in _choices(self.blur, odd=True)
            for d in _choices(self.downscale)
            for c in _choices(self.crf)
        ]


def _choices(bounds: Range | None, odd: bool = False) -> list[int | None]:
    if bounds is None:
        return [None]
    low, high = bounds
    if low > high:
        raise InputError(f"range {low}-{high} runs backwards")
    choices = np.arange(low, high + 1)
    if odd and low < high:  # a fixed level is left to Degradation, whose message is clearer
        choices = choices[choices % 2 == 1]
    return [int(c) for c in choices]


def _draw(rng: np.random.Generator, bounds: Range | None, odd: bool = False) -> int | None:
    choices = _choices(bounds, odd)
    return choices[int(rng.integers(len(choices)))]


# The training levels of the papers, one task each: compression artefact removal at CRF 45,
# deblurring with kernels of 15 to 25 taps, and super-resolution from x2 to x8.
PAPER_RANGES: dict[str, DegradationRanges] = {
    "compression": DegradationRanges(crf=(45, 45)),
    "blur": DegradationRanges(blur=(15, 25)),
    "lowres": DegradationRanges(downscale=(2, 8)),
}
