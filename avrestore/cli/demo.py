"""``avrestore demo``: degrade the sample clip three ways and show the frames side by side."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from avrestore.degrade import Degradation, degrade_video
from avrestore.errors import InputError
from avrestore.media.images import side_by_side, write_png
from avrestore.media.video import probe, read_frames
from avrestore.quality import video_psnr
from avrestore.samples import sample_path

# (file name, caption, degradation): the papers' three tasks at a middle level each.
DEMO_DEGRADATIONS = [
    ("compressed", "compressed, CRF 40", Degradation(crf=40)),
    ("blurred", "blurred, k=21", Degradation(blur=21)),
    ("lowres", "low-res, x4 + bicubic", Degradation(downscale=4)),
]


def _output_folder(out: Path) -> Path:
    """Create ``out`` if needed (not its parents) and check that files can go in it."""
    if out.exists() and not out.is_dir():
        raise InputError(f"--out is not a folder: {out}")
    if not out.parent.is_dir():
        raise InputError(f"output folder's parent does not exist: {out.parent}")
    try:
        out.mkdir(exist_ok=True)
    except OSError as e:
        raise InputError(f"cannot create {out}: {e.strerror}") from None
    return out


def demo(
    out: Annotated[Path, typer.Option(help="Folder for the videos and the PNG.")] = Path(
        "demo_out"
    ),
) -> None:
    """Degrade the sample clip (compression, blur, low resolution), write each with its audio,
    and a PNG of the middle frame side by side with each video's PSNR."""
    src = sample_path()
    folder = _output_folder(out)
    original, fps = read_frames(src, fps=probe(src).fps)
    middle = len(original) // 2
    tiles, captions = [original[middle]], [["original", "reference"]]
    print(f"sample: {src}")
    for name, caption, degradation in DEMO_DEGRADATIONS:
        path = degrade_video(src, folder / f"{name}.mp4", degradation)
        degraded, _ = read_frames(path, fps=fps)
        score = video_psnr(original, degraded)
        tiles.append(degraded[middle])
        captions.append([caption, f"PSNR {score:.2f} dB"])
        print(f"{caption:<24} PSNR {score:6.2f} dB  {path}")
    png = write_png(folder / "side_by_side.png", side_by_side(tiles, captions))
    print(f"middle frame side by side: {png}")
