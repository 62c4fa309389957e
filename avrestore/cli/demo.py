"""``avrestore demo``: degrade a clip (the sample by default) as a task's evaluation does,
restore it with the task's shipped model, and show original | degraded | restored with the
measured gain over the whole frame and the face box.

Deblurring is the default task because it is where the CPU-trained ``gavn-small`` checkpoints
gain most (see ``weights/*.md``); ``--task car --clip VIDEO`` measures a whole-frame CRF 45
copy of any video the same way.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from avrestore.errors import InputError

if TYPE_CHECKING:
    import numpy as np

# The level each task is shown at: the one its shipped checkpoint is evaluated at.
DEMO_LEVELS = {"car": 45, "deblur": 21, "sr": 4}
LEVEL_NAMES = {"car": "CRF {}", "deblur": "blurred, k={}", "sr": "x{} down, bicubic up"}


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
    import numpy as np

    from avrestore.faces.detect import FaceDetector

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
    task: Annotated[
        str, typer.Option(help="car (CRF 45), deblur (k 21) or sr (x4): degrade, then restore.")
    ] = "deblur",
    clip: Annotated[
        Path | None, typer.Option(help="A video to use instead of the sample clip.")
    ] = None,
) -> None:
    """Degrade the sample clip (or --clip) as --task is evaluated, restore it with the shipped
    gavn-small-TASK, and write both videos (audio kept) and a PNG of the middle frame with
    whole-frame and face-box PSNR against the original."""
    # Imported here: `avrestore --help` must not load torch, cv2, av or dlib.
    from avrestore.degrade import degrade_video, upscale
    from avrestore.evaluate.protocol import degradation_for
    from avrestore.media.files import existing_file
    from avrestore.media.images import side_by_side, write_png
    from avrestore.media.video import probe, read_frames
    from avrestore.quality import video_psnr
    from avrestore.restore.video import restore_video
    from avrestore.samples import sample_path

    if task not in DEMO_LEVELS:
        raise InputError(f"--task must be one of {', '.join(DEMO_LEVELS)}, got {task!r}")
    src = sample_path() if clip is None else existing_file(clip)
    folder = _output_folder(out)
    print(f"clip: {src}")
    level = DEMO_LEVELS[task]
    small = task == "sr"  # sr restores the small video, as a user's low-resolution one
    degraded_path = degrade_video(
        src, folder / "degraded.mp4", degradation_for(task, level), keep_small=small
    )
    summary = restore_video(
        degraded_path, folder / "restored.mp4", task, scale=level if small else None, progress=True
    )
    fps = probe(src).fps
    original = read_frames(src, fps=fps)[0]
    degraded = read_frames(degraded_path, fps=fps)[0]
    if small:
        degraded = upscale(degraded, original.shape[1:3])
    videos = {
        "original": original,
        LEVEL_NAMES[task].format(level): degraded,
        "restored, gavn-small": read_frames(summary.output, fps=fps)[0],
    }
    # Odd sides are padded by the encoder and x4 of a rounded-down size can differ by a few
    # pixels: score the region all three share, which is the original but for those pixels.
    h = min(v.shape[1] for v in videos.values())
    w = min(v.shape[2] for v in videos.values())
    videos = {name: v[:, :h, :w] for name, v in videos.items()}
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
