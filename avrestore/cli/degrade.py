"""``avrestore degrade``: write a compressed, blurred or low-resolution copy of a video."""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import Annotated

import typer

from avrestore.errors import InputError

_LEVEL = re.compile(r"^\s*(\d+)\s*(?:-\s*(\d+)\s*)?$")
_LEVEL_HELP = "A range LO-HI draws one value per video (see --seed)."


def parse_level(text: str | None, option: str) -> tuple[int, int] | None:
    """Read a level option: ``"21"`` -> (21, 21); ``"15-25"`` -> (15, 25); ``None`` -> None."""
    if text is None:
        return None
    m = _LEVEL.match(text)
    if not m:
        raise InputError(f"{option} takes a whole number or a range LO-HI, got {text!r}")
    low = int(m.group(1))
    return low, int(m.group(2) or low)


def degrade(
    input: Annotated[Path, typer.Argument(help="Video to degrade (left untouched).")],
    output: Annotated[Path, typer.Argument(help="Where to write it (.mp4, .mov, .mkv).")],
    compress: Annotated[
        str | None,
        typer.Option(metavar="CRF", help=f"H.264 CRF, 0-51 (papers: 35, 40, 45). {_LEVEL_HELP}"),
    ] = None,
    blur: Annotated[
        str | None,
        typer.Option(metavar="KSIZE", help=f"Odd Gaussian kernel (papers: 15-25). {_LEVEL_HELP}"),
    ] = None,
    downscale: Annotated[
        str | None,
        typer.Option(metavar="S", help=f"Downscale factor (papers: 2-8). {_LEVEL_HELP}"),
    ] = None,
    keep_small: Annotated[
        bool, typer.Option(help="Keep the downscaled size instead of upscaling back (bicubic).")
    ] = False,
    seed: Annotated[
        int | None, typer.Option(help="Seed for levels given as ranges; fresh each run if unset.")
    ] = None,
) -> None:
    """Blur, then downscale, then compress INPUT, keeping its audio and (unless --keep-small)
    its size. Without --compress the output is encoded visually lossless (CRF 10). An odd
    width or height is kept by encoding H.264 4:4:4, which some browsers cannot play."""
    # Imported here: `avrestore --help` must not load torch, cv2, av or dlib.
    import numpy as np

    from avrestore.degrade import DegradationRanges, degrade_video

    ranges = DegradationRanges(
        blur=parse_level(blur, "--blur"),
        downscale=parse_level(downscale, "--downscale"),
        crf=parse_level(compress, "--compress"),
    )
    if ranges == DegradationRanges():
        raise InputError("nothing to do: give at least one of --compress, --blur, --downscale")
    degradation = ranges.sample(np.random.default_rng(seed))
    written = degrade_video(input, output, degradation, keep_small=keep_small)
    # After the work, so that a rejected input leaves the error as the only line on stderr.
    print(f"avrestore: degrade: {degradation}", file=sys.stderr)
    print(written)
