"""``avrestore evaluate``: the papers' comparison table for one task and level."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from avrestore.errors import InputError
from avrestore.evaluate.protocol import LEVEL_MEANING, TASKS
from avrestore.media.files import atomic_path, check_output

_LEVELS = "; ".join(f"{task}: {meaning}" for task, meaning in LEVEL_MEANING.items())


def _outputs(json_path: Path | None, markdown: Path | None, png: Path | None) -> None:
    """Check the output paths before the (long) evaluation rather than after it."""
    for path in (json_path, markdown, png):
        if path is not None:
            check_output(path)
    if png is not None and png.suffix.lower() != ".png":
        raise InputError(f"--png {png}: the name must end in .png")


def evaluate(
    task: Annotated[str, typer.Option(help=f"Restoration task: {', '.join(TASKS)}.")],
    level: Annotated[int, typer.Option(help=f"Degradation level. {_LEVELS}.")],
    data: Annotated[
        Path, typer.Option(help="Prepared folder (clips/, splits/) or a folder of raw videos.")
    ],
    models: Annotated[
        str,
        typer.Option(
            help="Comma-separated methods: input (the degraded frames, small ones shown pixel "
            "by pixel), bicubic (sr, mixed), registered names with shipped weights, "
            ".safetensors paths."
        ),
    ],
    json_path: Annotated[
        Path | None, typer.Option("--json", help="Write the results as JSON here.")
    ] = None,
    markdown: Annotated[Path | None, typer.Option(help="Write the markdown table here.")] = None,
    png: Annotated[
        Path | None, typer.Option(help="Write one frame of every method (HQ last) here.")
    ] = None,
    clips: Annotated[
        str | None,
        typer.Option(
            help="train, val, test or all (default: test when prepared, all when raw videos)."
        ),
    ] = None,
    max_frames: Annotated[
        int | None, typer.Option(help="Score only the first K frames of each clip.")
    ] = None,
    every: Annotated[
        int,
        typer.Option(
            help="Compute identity and NIQE, the slow metrics on CPU, on every K-th frame only."
        ),
    ] = 1,
    niqe: Annotated[Path | None, typer.Option(help="NIQE's niqe_pris_params.npz.")] = None,
    lpips_alexnet: Annotated[
        Path | None, typer.Option(help="torchvision AlexNet state dict (LPIPS).")
    ] = None,
    lpips_lin: Annotated[Path | None, typer.Option(help="LPIPS v0.1 alex.pth heads.")] = None,
    syncnet: Annotated[Path | None, typer.Option(help="SyncNet syncnet_v2.model.")] = None,
    landmark_model: Annotated[
        str | None,
        typer.Option(
            help="Landmarks for models taking them, found on the LQ frames: dlib (the default, "
            "as restore) or a landmark network's shipped name or .safetensors path."
        ),
    ] = None,
    teacher_landmarks: Annotated[
        bool,
        typer.Option(
            help="Give models the HQ crops' dlib landmarks instead of those found on the LQ "
            "frames (an upper bound; not possible in deployment)."
        ),
    ] = False,
    cache: Annotated[
        Path | None,
        typer.Option(
            help="Cache of prepared raw clips and degraded frames (default: DATA/cache when "
            "prepared, else under ~/.cache/avrestore/evaluate)."
        ),
    ] = None,
    batch: Annotated[int, typer.Option(help="Windows per forward call.")] = 1,
    device: Annotated[str, typer.Option(help="Torch device for the models, e.g. cuda.")] = "cpu",
    compress_at: Annotated[
        str,
        typer.Option(
            help="car: compress the 224² face crop (crop, the papers' protocol) or the clip's "
            "source video at its own size, then crop (source: what restore gets). DAVD-Net's "
            "CPM reads the crop's QP maps under crop and is off under source."
        ),
    ] = "crop",
) -> None:
    """Degrade the clips for TASK at LEVEL (cached, so every method sees the same input),
    restore them with each model, score every frame against the HQ crop, and print the table.
    Metrics are means over all frames; `seconds` is restoration wall time per frame."""
    _outputs(json_path, markdown, png)
    if (lpips_alexnet is None) != (lpips_lin is None):
        raise InputError("LPIPS needs both --lpips-alexnet and --lpips-lin")
    # Imported here: torch, dlib and the models would slow every other command's start.
    from avrestore.evaluate.report import markdown_table, preview_grid
    from avrestore.evaluate.run import evaluate as run_evaluation
    from avrestore.media.images import write_png
    from avrestore.metrics.clip import MetricResources

    lpips = None if lpips_alexnet is None else (lpips_alexnet, lpips_lin)
    evaluation = run_evaluation(
        data,
        task,
        level,
        [m.strip() for m in models.split(",") if m.strip()],
        split=clips,
        max_frames=max_frames,
        resources=MetricResources(niqe, lpips, syncnet),
        every=every,
        landmark_model=landmark_model,
        teacher_landmarks=teacher_landmarks,
        cache=cache,
        batch=batch,
        device=device,
        compress_at=compress_at,
    )
    results = evaluation.results
    for clip_id, reason in results["rejected"].items():
        typer.echo(f"avrestore: evaluate: skipped {clip_id}: {reason}", err=True)
    table = markdown_table(results)
    typer.echo(table, nl=False)
    if json_path is not None:
        with atomic_path(json_path) as tmp:
            tmp.write_text(json.dumps(results, indent=1) + "\n")
    if markdown is not None:
        with atomic_path(markdown) as tmp:
            tmp.write_text(table)
    if png is not None:
        write_png(png, preview_grid(evaluation))
