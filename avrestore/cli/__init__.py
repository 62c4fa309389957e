"""The ``avrestore`` command line: one typer app; each command lives in its own module.

User errors (``InputError``) become one line on stderr and exit code 2, never a traceback.
"""

from __future__ import annotations

import sys

import typer

from avrestore.cli import degrade, demo, evaluate, models, prepare, restore, train
from avrestore.errors import InputError

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


def main() -> None:
    """Entry point: run the app and turn user errors into one clear line and exit code 2."""
    try:
        app()
    except InputError as e:
        print(f"avrestore: error: {e}", file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt:
        print("avrestore: interrupted; no partial output was kept", file=sys.stderr)
        sys.exit(130)
