"""``avrestore leaderboard``: every shipped checkpoint on the test speakers, one table per
task, pictures beside it; results cached per checkpoint."""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import Annotated

import typer

from avrestore.errors import InputError
from avrestore.leaderboard import LEVELS

_PROTOCOL = ", ".join(f"{task} {level}" for task, level in LEVELS.items())


def parse_tasks(tasks: str) -> list[str]:
    """The tasks named in ``--tasks`` (comma-separated), in the order given."""
    names = [name.strip() for name in tasks.split(",") if name.strip()]
    unknown = [name for name in names if name not in LEVELS]
    if unknown or not names:
        got = ", ".join(unknown) or repr(tasks)
        raise InputError(f"--tasks takes names of {', '.join(LEVELS)}; got {got}")
    if len(set(names)) != len(names):
        raise InputError(f"--tasks names a task twice: {tasks}")
    return names


def leaderboard(
    data: Annotated[
        Path, typer.Option(help="Prepared folder (clips/, splits/), made by `avrestore prepare`.")
    ],
    tasks: Annotated[
        str,
        typer.Option(help=f"Comma-separated tasks, each at its protocol level ({_PROTOCOL})."),
    ] = ",".join(LEVELS),
    clips: Annotated[
        str, typer.Option(help="Split evaluated: test (speakers not trained on), val, train, all.")
    ] = "test",
    max_frames: Annotated[int, typer.Option(help="Score the first K frames of each clip.")] = 60,
    every: Annotated[
        int, typer.Option(help="Compute identity and NIQE (slow on CPU) on every K-th frame.")
    ] = 5,
    out: Annotated[
        Path,
        typer.Option(
            help="The markdown page; its pictures go beside it (OUT's stem, then -<task>.png "
            "and -speed.png)."
        ),
    ] = Path("docs/leaderboard.md"),
    weights_dir: Annotated[
        Path | None,
        typer.Option(
            help="Folder of checkpoints; those whose metadata names a task are evaluated "
            "(default: the shipped weights/)."
        ),
    ] = None,
    niqe: Annotated[
        Path | None, typer.Option(help="NIQE's niqe_pris_params.npz (no NIQE column without).")
    ] = None,
    cache_json: Annotated[
        Path | None,
        typer.Option(help="Results cache, reused and updated (default: OUT with .json)."),
    ] = None,
    ceiling: Annotated[
        list[str] | None,
        typer.Option(
            help="A VQ autoencoder (shipped name or weights path, e.g. ts-vqgan-small) whose "
            "reconstruction of the same clean frames is shown as the ceiling of the "
            "restorers that draw with it; repeatable."
        ),
    ] = None,
) -> None:
    """Evaluate, for each task, the degraded input (and bicubic for sr) and every checkpoint
    of that task on the same clips and frames; write the papers' table per task with each
    network's parameters and GMACs, the command that regenerates the page, the date and
    machine, one frame of every method per task, a quality-against-speed plot, and the
    ceilings of the VQ autoencoders named. Only checkpoints not in the cache (new or changed)
    are evaluated."""
    names = parse_tasks(tasks)
    for option, value in (("--max-frames", max_frames), ("--every", every)):
        if value < 1:
            raise InputError(f"{option} must be at least 1, got {value}")
    # Imported here: `avrestore --help` must not load torch, cv2, av or dlib.
    from avrestore.evaluate.sources import is_prepared
    from avrestore.leaderboard.checkpoints import CEILING, ceiling_checkpoint, find_checkpoints
    from avrestore.leaderboard.page import render
    from avrestore.leaderboard.plot import speed_plot
    from avrestore.leaderboard.run import Options, build_boards, build_ceilings
    from avrestore.media.files import atomic_path, check_output, existing_file
    from avrestore.media.images import write_png
    from avrestore.models.weights import WEIGHTS_DIR

    if not data.is_dir():
        raise InputError(f"data folder does not exist: {data}")
    if not is_prepared(data):
        raise InputError(
            f"--data {data} is not a prepared folder (no clips/ and splits/); "
            "make one with `avrestore prepare SRC DST`"
        )
    cache = out.with_suffix(".json") if cache_json is None else cache_json
    pictures = {name: out.with_name(f"{out.stem}-{name}.png") for name in [*names, "speed"]}
    for path in (out, cache, *pictures.values()):
        check_output(path)
    if niqe is not None:
        existing_file(niqe)
    found = find_checkpoints(WEIGHTS_DIR if weights_dir is None else weights_dir)
    for name in names:
        if not found.get(name):
            raise InputError(
                f"no checkpoint for task {name} in {weights_dir or WEIGHTS_DIR} (a .safetensors "
                f"file whose metadata has task={name})"
            )
    priors = list(dict.fromkeys(ceiling or []))
    found[CEILING] = [ceiling_checkpoint(name) for name in priors]  # before the long part

    options = Options(data, clips, max_frames, every, niqe)
    boards = build_boards(options, names, found, cache)
    ceilings = build_ceilings(options, found, cache)
    for board in boards:
        write_png(pictures[board.task], board.preview())
    write_png(pictures["speed"], speed_plot(boards))
    command = ["avrestore", "leaderboard", "--data", str(data), "--tasks", ",".join(names)]
    command += ["--clips", clips, "--max-frames", str(max_frames), "--every", str(every)]
    command += ["--out", str(out), "--cache-json", str(cache)]
    if weights_dir is not None:
        command += ["--weights-dir", str(weights_dir)]
    if niqe is not None:
        command += ["--niqe", str(niqe)]
    for name in priors:
        command += ["--ceiling", name]
    with atomic_path(out) as tmp:
        tmp.write_text(render(boards, shlex.join(command), options, out, pictures, ceilings))
    for path in (out, *pictures.values()):
        typer.echo(path)
