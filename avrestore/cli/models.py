"""``avrestore models [--json] [--size S]``: every registered model, its size and its cost."""

from __future__ import annotations

import json
from typing import Annotated

import typer


def _describe(name: str, size: int) -> dict[str, object]:
    """One model's row: parameters, cost per output frame and frames in -> out."""
    from avrestore.models.complexity import measure
    from avrestore.models.registry import REGISTRY, build

    cost = measure(build(name), size)
    return {
        "name": name,
        "params": cost.params,
        "gmacs_per_frame": round(cost.gmacs_per_frame, 3),
        "frames_in": cost.frames_in,
        "frames_out": cost.frames_out,
        "frame_size": size,
        "summary": REGISTRY[name].summary,
    }


def models(
    as_json: Annotated[bool, typer.Option("--json", help="Print a JSON list instead.")] = False,
    size: Annotated[
        int, typer.Option(min=16, help="Side of the square frames the cost is measured on.")
    ] = 224,
) -> None:
    """List the registered models: parameters, GMACs per restored frame (multiply-accumulates,
    i.e. half the FLOPs; deformable sampling not counted) and frames in -> out."""
    # Imported here: `avrestore --help` must not load torch, cv2, av or dlib.
    from avrestore.models.registry import REGISTRY

    rows = [_describe(name, size) for name in sorted(REGISTRY)]
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
        return
    typer.echo(f"{'model':<16} {'params':>10} {f'GMACs/frame@{size}':>18} {'in->out':>8}  summary")
    for r in rows:
        gmacs, frames = f"{r['gmacs_per_frame']:.2f}", f"{r['frames_in']}->{r['frames_out']}"
        typer.echo(
            f"{r['name']:<16} {r['params'] / 1e6:>9.2f}M {gmacs:>18} {frames:>8}  {r['summary']}"
        )
