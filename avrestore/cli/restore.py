"""``avrestore restore``: restore the faces of any video with a trained model."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer


def restore(
    input: Annotated[Path, typer.Argument(help="Video to restore (left untouched).")],
    output: Annotated[
        Path, typer.Option("--output", "-o", help="Where to write (.mp4, .mov, .mkv).")
    ],
    task: Annotated[str, typer.Option(help="car (compression), deblur or sr (super-resolution).")],
    scale: Annotated[
        int | None, typer.Option(help="sr only: upscaling factor, 2-8 (default 4).")
    ] = None,
    model: Annotated[
        str | None,
        typer.Option(
            metavar="NAME|PATH",
            help="Weights: a .safetensors file or a shipped name (default gavn-small-TASK). "
            "DAVD-Net's CPM needs the bitstream of the face crop itself and is off when "
            "restoring a real video.",
        ),
    ] = None,
    landmark_model: Annotated[
        str,
        typer.Option(
            metavar="dlib|NAME|PATH",
            help="Landmarks for models with a landmark branch: dlib on the face crop (what the "
            "shipped models trained with) or a landmark network's shipped name or weights.",
        ),
    ] = "dlib",
    compare: Annotated[
        Path | None,
        typer.Option(
            metavar="FILE",
            help="Also write input | restored: a .png of the middle frame, or a video.",
        ),
    ] = None,
    device: Annotated[str, typer.Option(help="cpu or cuda.")] = "cpu",
    all_faces: Annotated[
        bool, typer.Option("--all-faces", help="Restore every face, not only the largest.")
    ] = False,
    batch: Annotated[int, typer.Option(help="Windows per forward pass.")] = 1,
    threads: Annotated[
        int | None,
        typer.Option(
            help="CPU threads of the model (default: torch's, one per core). On cores other "
            "jobs keep busy, 1 can be faster."
        ),
    ] = None,
    realtime: Annotated[
        bool,
        typer.Option(
            "--realtime",
            help="Every speed lever at once, for the CPU: the model run by PyTorch in fp32, by "
            "PyTorch under bf16 autocast (on a CPU with AVX-512 BF16 or AMX) or by ONNX "
            "Runtime, whichever ran a window fastest on this machine (timed once; the first run "
            "also exports the model into ~/.cache/avrestore/onnx, which takes a while), "
            "decoding and encoding in threads beside the model, the threads (--threads) "
            "restoring parts of each block at once, one thread each, faces searched for on every "
            "10th frame instead of every 2nd (a face that appears or moves suddenly is found up "
            "to 9 frames later), 12 frames restored at a time instead of 64 (a lower latency). "
            "Trades: the output is no longer the default path's bit for bit (the face's PSNR "
            "stays within 0.05 dB of it); --device cpu only.",
        ),
    ] = False,
    max_frames: Annotated[
        int | None, typer.Option(help="Restore only the first N frames (a quick preview).")
    ] = None,
) -> None:
    """Restore the face in INPUT: find and track it, restore it with the model (guided by the
    speech and by landmarks), paste it back with a feathered edge and keep the audio.
    Frames without a face, and everything outside the face, are left as they are. The size
    is kept (times --scale for sr), an odd width or height by encoding H.264 4:4:4, which
    some browsers cannot play."""
    # Imported here: torch, dlib and OpenCV would slow every other command's start.
    from avrestore.restore.runtime import REALTIME, REFERENCE
    from avrestore.restore.video import restore_video

    summary = restore_video(
        input,
        output,
        task,
        model=model,
        landmark_model=landmark_model,
        scale=scale,
        compare=compare,
        device=device,
        all_faces=all_faces,
        batch=batch,
        max_frames=max_frames,
        progress=True,
        path=REALTIME if realtime else REFERENCE,
        threads=threads,
    )
    latency = summary.latency
    typer.echo(
        f"restored {summary.restored_frames} of {summary.frames} frames "
        f"({summary.tracks} face track(s)) in {summary.seconds:.1f} s "
        f"({summary.frames / summary.seconds:.1f} frames/s; from decoding to encoding a frame "
        f"took {latency['mean']:.2f} s, at most {latency['max']:.2f} s): {summary.output}"
    )
