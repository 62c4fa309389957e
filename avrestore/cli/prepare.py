"""``avrestore prepare``: cut face-centred training clips (video, audio, landmarks) from videos."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from avrestore.data.layouts import LAYOUTS
from avrestore.data.split import DEFAULT_FRACTIONS, DEFAULT_SEED
from avrestore.errors import InputError


def prepare(
    src: Annotated[Path, typer.Argument(help="Folder of source videos (left untouched).")],
    dst: Annotated[Path, typer.Argument(help="Output folder: clips/, splits/, summary.json.")],
    layout: Annotated[str, typer.Option(help=f"Source layout: {', '.join(LAYOUTS)}.")] = "folder",
    size: Annotated[int, typer.Option(help="Side of the square face crop in pixels.")] = 224,
    shard: Annotated[str, typer.Option(help="Process only shard K/N (0 <= K < N).")] = "0/1",
    workers: Annotated[int, typer.Option(help="Worker processes.")] = 1,
    speakers: Annotated[
        Path | None,
        typer.Option(
            help="TSV with 'file' and 'speaker' columns (folder layout; default SRC/SOURCES.tsv)."
        ),
    ] = None,
    speaker_regex: Annotated[
        str | None,
        typer.Option(help="Regex on the relative path; its 'speaker' group (or group 1) names it."),
    ] = None,
    require_audio: Annotated[
        bool, typer.Option(help="Reject clips without audio (else kept and flagged).")
    ] = False,
    max_missing: Annotated[
        float, typer.Option(help="Reject a clip whose face is missing in more of its frames.")
    ] = 0.2,
    detect_every: Annotated[
        int, typer.Option(help="Detect faces on every k-th frame, interpolate between.")
    ] = 2,
    smooth: Annotated[float, typer.Option(help="Gaussian sigma (frames) for the crop box.")] = 3.0,
    crf: Annotated[int, typer.Option(help="H.264 CRF of face.mp4 (0: lossless YUV).")] = 0,
    max_frames: Annotated[
        int | None, typer.Option(help="Use at most this many frames of each clip.")
    ] = None,
    detector: Annotated[str, typer.Option(help="dlib face detector: hog or cnn.")] = "hog",
    split: Annotated[
        str, typer.Option(help="train,val,test shares of the speakers (groups).")
    ] = ",".join(map(str, DEFAULT_FRACTIONS)),
    seed: Annotated[int, typer.Option(help="Seed of the speaker split.")] = DEFAULT_SEED,
) -> None:
    """Prepare face-centred clips for training. Finished clips (kept or rejected) are skipped
    on a rerun; delete DST/rejected/<id>.json to retry one."""
    if size < 16:
        raise InputError(f"--size must be at least 16, got {size}")
    if workers < 1 or detect_every < 1:
        raise InputError("--workers and --detect-every must be at least 1")
    if not 0 <= max_missing < 1:
        raise InputError(f"--max-missing must lie in [0, 1), got {max_missing}")
    if max_frames is not None and max_frames < 1:
        raise InputError(f"--max-frames must be at least 1, got {max_frames}")
    if not 0 <= crf <= 51:
        raise InputError(f"--crf must lie in 0-51, got {crf}")
    if speakers is not None and not speakers.is_file():
        raise InputError(f"no such speaker table: {speakers}")
    # Imported here: dlib, OpenCV and SciPy would slow every other command's start.
    from avrestore.data.prepare import PrepareOptions
    from avrestore.data.prepare_run import format_summary, parse_shard, prepare_dataset
    from avrestore.data.split import parse_fractions

    options = PrepareOptions(
        size=size,
        max_missing=max_missing,
        require_audio=require_audio,
        detect_every=detect_every,
        smooth_sigma=smooth,
        crf=crf,
        max_frames=max_frames,
        detector=detector,
    )
    summary = prepare_dataset(
        src,
        dst,
        layout,
        options,
        shard=parse_shard(shard),
        workers=workers,
        seed=seed,
        fractions=parse_fractions(split),
        speakers_tsv=speakers,
        speaker_regex=speaker_regex,
    )
    print(format_summary(summary))
    print(f"summary: {dst / 'summary.json'}")
