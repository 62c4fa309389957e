"""The ``avrestore`` typer app: one command per module of this package."""

from __future__ import annotations

import typer

from avrestore.cli import (
    bench,
    degrade,
    demo,
    evaluate,
    leaderboard,
    models,
    prepare,
    restore,
    serve,
    train,
)

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    help="Audio-assisted restoration of talking-head videos.",
)
app.command("degrade")(degrade.degrade)
app.command("demo")(demo.demo)
app.command("prepare")(prepare.prepare)
app.command("models")(models.models)
app.command("train")(train.train)
app.command("evaluate")(evaluate.evaluate)
app.command("restore")(restore.restore)
app.command("bench")(bench.bench)
app.command("leaderboard")(leaderboard.leaderboard)
app.command("serve")(serve.serve)
