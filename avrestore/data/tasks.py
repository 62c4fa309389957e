"""The restoration tasks a dataset can train: where the LQ frames come from and their levels.

``car`` reads whole-clip copies compressed once at CRF 45 (see ``compressed_copy``): x264 on
a 7-frame snippet opens with an I-frame and rate-controls differently, so its artefacts are
not those of a real stream (frames 20-26 of grid_bbaf2n at CRF 45: 28.0 dB PSNR when the
whole clip is encoded, 27.0 dB as a snippet). ``deblur`` and ``sr`` degrade on the fly at
the papers' training levels; ``mixed`` draws a chain of one to three of those steps per
item, compressing the patch on the fly after warm-up frames (``COMPRESSION_WARMUP``) so the
window is mid-stream.

Where ``car``'s copy is compressed (``compress_at``) is the difference between the papers'
protocol and deployment. The papers compress the 224² face video (``crop``); a user's video
was compressed whole at its own size and its face crop is then resized to 224² (``source``:
the source video compressed at CRF 45, cut with the clip's ``boxes.npy``). The two differ in
kind: a face 400 px wide has its 16-pixel macroblocks shrunk to 9 pixels and is far less
degraded (test clip retalking_face_3: 29.6 dB against 25.7 dB for the crop compressed), so a
model trained on one protocol alone over-smooths the other.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from avrestore.degrade import PAPER_RANGES, Degradation, DegradationRanges
from avrestore.errors import InputError

CAR_CRF = PAPER_RANGES["compression"].crf[0]  # the papers' one level for artefact removal
# Frames encoded before a window that is compressed on the fly; they are then dropped.
COMPRESSION_WARMUP = 8


COMPRESS_AT = ("crop", "source")  # where a task's whole-clip copy is compressed (see above)


@dataclass(frozen=True)
class Level:
    """The LQ frames of one item: the task's whole-clip copy compressed ``at`` the crop or the
    source (None: the HQ frames), then ``degradation`` applied on the fly."""

    degradation: Degradation
    at: str | None = None


@dataclass(frozen=True)
class Task:
    """A task: ``chains`` to draw one from per item (uniformly), then its levels; with
    ``source_crf`` the LQ frames start from a whole-clip copy compressed at that CRF, at a
    place drawn from ``compress_at`` per item."""

    chains: tuple[DegradationRanges, ...]
    source_crf: int | None = None
    compress_at: tuple[str, ...] = ("crop",)

    def __post_init__(self) -> None:
        bad = [a for a in self.compress_at if a not in COMPRESS_AT]
        if bad or not self.compress_at:
            raise InputError(f"compress_at takes {' and/or '.join(COMPRESS_AT)}, got {bad or '[]'}")

    def sample(self, rng: np.random.Generator) -> Level:
        """Draw the LQ source and the on-the-fly degradation of one item."""
        degradation = self.chains[int(rng.integers(len(self.chains)))].sample(rng)
        if self.source_crf is None:
            return Level(degradation)
        return Level(degradation, self.compress_at[int(rng.integers(len(self.compress_at)))])

    def levels(self) -> list[Level]:
        """Every level ``sample`` can draw."""
        places = self.compress_at if self.source_crf is not None else (None,)
        every = {d for chain in self.chains for d in chain.every_level()}
        return sorted((Level(d, at) for d in every for at in places), key=self.key)

    def key(self, level: Level) -> str:
        """A name for the LQ frames of one level, e.g. ``crf45``, ``crf45src`` or ``blur21``
        (cache folders)."""
        crf = None if self.source_crf is None else f"{self.source_crf}"
        if crf is not None and level.at == "source":
            crf += "src"
        steps = {
            "crf": crf,
            "blur": level.degradation.blur,
            "down": level.degradation.downscale,
            "crfx": level.degradation.crf,
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
