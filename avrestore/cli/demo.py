"""``avrestore demo``: blur the sample clip, restore it with the shipped deblurring model, and
show original | degraded | restored with the measured gain.

Deblurring is the demo's task because it is where the CPU-trained ``gavn-small`` checkpoints
gain most so far (see ``weights/*.md``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import numpy as np
import typer

from avrestore.degrade import Degradation, degrade_video
from avrestore.errors import InputError
from avrestore.faces.detect import FaceDetector
from avrestore.media.images import side_by_side, write_png
from avrestore.media.video import probe, read_frames
from avrestore.quality import video_psnr
from avrestore.restore.video import restore_video
from avrestore.samples import sample_path

DEMO_TASK, DEMO_BLUR = "deblur", 21


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


def _face_box(frame: np.ndarray) -> tuple[slice, slice]:
    """Rows and columns of the largest face the detector finds (the whole frame if none)."""
    boxes, _ = FaceDetector().detect(frame)
    if not len(boxes):
        return slice(None), slice(None)
    x0, y0, x1, y1 = boxes[np.argmax((boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1]))]
    h, w = frame.shape[:2]
    return slice(max(0, int(y0)), min(h, int(y1))), slice(max(0, int(x0)), min(w, int(x1)))


def demo(
    out: Annotated[Path, typer.Option(help="Folder for the videos and the PNG.")] = Path(
        "demo_out"
    ),
) -> None:
    """Blur the sample clip (k=21), restore it with the shipped gavn-small-deblur, and write
    both videos (audio kept) and a PNG of the middle frame with whole-frame and face PSNR."""
    src = sample_path()
    folder = _output_folder(out)
    print(f"sample: {src}")
    degraded_path = degrade_video(src, folder / "degraded.mp4", Degradation(blur=DEMO_BLUR))
    summary = restore_video(degraded_path, folder / "restored.mp4", DEMO_TASK, progress=True)
    fps = probe(src).fps
    videos = {
        "original": read_frames(src, fps=fps)[0],
        f"blurred, k={DEMO_BLUR}": read_frames(degraded_path, fps=fps)[0],
        "restored, gavn-small": read_frames(summary.output, fps=fps)[0],
    }
    original = videos["original"]
    middle = len(original) // 2
    rows, cols = _face_box(original[middle])
    tiles, captions = [], []
    for name, frames in videos.items():
        tiles.append(frames[middle])
        if frames is original:
            captions.append([name, "reference"])
            continue
        whole = video_psnr(original, frames)
        face = video_psnr(original[:, rows, cols], frames[:, rows, cols])
        captions.append([name, f"PSNR {whole:.2f} dB", f"face {face:.2f} dB"])
        print(f"{name:<22} PSNR {whole:6.2f} dB   face PSNR {face:6.2f} dB")
    png = write_png(folder / "comparison.png", side_by_side(tiles, captions))
    print(f"restored video: {summary.output}\ncomparison: {png}")
