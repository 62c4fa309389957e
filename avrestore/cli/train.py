"""``avrestore train CONFIG [--resume] [key=value ...]``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer


def train(
    config: Annotated[Path, typer.Argument(help="Experiment YAML (see configs/).")],
    overrides: Annotated[
        list[str] | None, typer.Argument(help="Config overrides: dotted.key=value ...")
    ] = None,
    resume: Annotated[bool, typer.Option(help="Continue from the run's last checkpoint.")] = False,
    run_dir: Annotated[
        Path | None, typer.Option(help="Where the run is written (default runs/NAME).")
    ] = None,
) -> None:
    """Train a model through its configured stages; under torchrun, one process per device."""
    # Imported here: `avrestore --help` must not load torch, cv2, av or dlib.
    from avrestore.train.config import load_config
    from avrestore.train.loop import train as run_training

    cfg = load_config(config, overrides or [])  # checked whole before anything is made
    out = run_dir or Path("runs") / (cfg.name or config.stem)
    final = run_training(cfg, out, resume=resume)
    typer.echo(f"weights: {final}")
