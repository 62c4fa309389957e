"""The restoration tasks a dataset can train: where the LQ frames come from and their levels.

``car`` reads whole-clip copies compressed once at CRF 45 (see ``compressed_copy``): x264 on
a 7-frame snippet opens with an I-frame and rate-controls differently, so its artefacts are
not those of a real stream (frames 20-26 of grid_bbaf2n at CRF 45: 28.0 dB PSNR when the
whole clip is encoded, 27.0 dB as a snippet). ``deblur`` and ``sr`` degrade on the fly at
the papers' training levels; ``mixed`` draws a chain of one to three of those steps per
item, compressing the patch on the fly after warm-up frames (``COMPRESSION_WARMUP``) so the
window is mid-stream.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from avrestore.degrade import PAPER_RANGES, Degradation, DegradationRanges
from avrestore.errors import InputError

CAR_CRF = PAPER_RANGES["compression"].crf[0]  # the papers' one level for artefact removal
# Frames encoded before a window that is compressed on the fly; they are then dropped.
COMPRESSION_WARMUP = 8


@dataclass(frozen=True)
class Task:
    """A task: ``chains`` to draw one from per item (uniformly), then its levels; with
    ``source_crf`` the LQ frames start from the whole-clip copy compressed at that CRF."""

    chains: tuple[DegradationRanges, ...]
    source_crf: int | None = None

    def sample(self, rng: np.random.Generator) -> Degradation:
        """Draw the on-the-fly degradation of one item."""
        return self.chains[int(rng.integers(len(self.chains)))].sample(rng)

    def levels(self) -> list[Degradation]:
        """Every degradation ``sample`` can draw."""
        return sorted({d for chain in self.chains for d in chain.every_level()}, key=self.key)

    def key(self, degradation: Degradation) -> str:
        """A name for the LQ frames of one level, e.g. ``crf45`` or ``blur21`` (cache folders)."""
        steps = {
            "crf": self.source_crf,
            "blur": degradation.blur,
            "down": degradation.downscale,
            "crfx": degradation.crf,
        }
        name = "-".join(f"{k}{v}" for k, v in steps.items() if v is not None)
        return name or "clean"


def _every_chain() -> tuple[DegradationRanges, ...]:
    """Every non-empty chain of the papers' blur, downscale and compression levels."""
    blur, down = PAPER_RANGES["blur"].blur, PAPER_RANGES["lowres"].downscale
    crf = PAPER_RANGES["compression"].crf
    chains = (
        DegradationRanges(blur=b, downscale=d, crf=c)
        for b in (None, blur)
        for d in (None, down)
        for c in (None, crf)
    )
    return tuple(c for c in chains if c != DegradationRanges())


TASKS: dict[str, Task] = {
    "car": Task((DegradationRanges(),), source_crf=CAR_CRF),
    "deblur": Task((PAPER_RANGES["blur"],)),
    "sr": Task((PAPER_RANGES["lowres"],)),
    "mixed": Task(_every_chain()),
}


def get_task(name: str) -> Task:
    """The task called ``name``, or InputError naming the known ones."""
    if name not in TASKS:
        raise InputError(f"unknown task {name!r}; choose one of {', '.join(TASKS)}")
    return TASKS[name]
