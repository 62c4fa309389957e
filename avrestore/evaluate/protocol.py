"""The evaluation protocol: one fixed degradation per task and level.

- ``car``: H.264 (libx264) at CRF ``level`` (the papers use 45);
- ``deblur``: Gaussian blur with an odd kernel of ``level`` taps (the papers: 15 to 25);
- ``sr``: area downscaling by the integer factor ``level`` (the papers: 2 to 8); models get
  the small frames bicubic-upscaled back to the crop size;
- ``mixed``: blur k=15, then downscale x2, then H.264 at CRF ``level``: each step at the mild
  end of the papers' ranges, so that the chain stays restorable, and the CRF, the knob with
  the finest steps, sets the severity (e.g. 35, 40, 45).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from avrestore.errors import InputError

if TYPE_CHECKING:  # the CLI reads this module's names for --help without loading codecs
    from avrestore.degrade import Degradation

MIXED_BLUR, MIXED_DOWNSCALE = 15, 2

LEVEL_MEANING = {
    "car": "x264 CRF, 0-51",
    "deblur": "odd Gaussian kernel size",
    "sr": "downscale factor >= 2",
    "mixed": f"x264 CRF after blur k={MIXED_BLUR} and x{MIXED_DOWNSCALE} downscale",
}
TASKS = tuple(LEVEL_MEANING)


def degradation_for(task: str, level: int) -> Degradation:
    """The degradation of ``task`` at ``level``; InputError for an unknown task or a level
    that does not fit it."""
    from avrestore.degrade import Degradation

    if task not in TASKS:
        raise InputError(f"unknown task {task!r}; choose one of {', '.join(TASKS)}")
    try:
        if task == "car":
            return Degradation(crf=level)
        if task == "deblur":
            return Degradation(blur=level)
        if task == "sr":
            return Degradation(downscale=level)
        return Degradation(blur=MIXED_BLUR, downscale=MIXED_DOWNSCALE, crf=level)
    except InputError as e:
        raise InputError(f"--level {level} does not fit task {task} ({e})") from None
