"""The ``avrestore`` command line: ``main`` runs the typer app of ``avrestore.cli.app``.

``main`` installs its signal handlers before it imports the app (typer and every command's
module take a few hundred milliseconds to load), so even an early Ctrl-C ends in one line.
User errors (``InputError``) become one line on stderr and exit code 2, never a traceback; so
do a full disk (exit code 1) and SIGINT or SIGTERM (exit code 130 or 143), once the partial
output is removed.
"""

from __future__ import annotations

import errno
import functools
import os
import signal
import sys
from types import FrameType

from avrestore.errors import InputError


class _Interrupted(BaseException):
    """Raised by the SIGINT and SIGTERM handler. Neither an Exception nor a KeyboardInterrupt
    (which typer turns into a silent exit 130), so nothing on the way catches it, and every
    ``with`` and ``finally`` on the way removes what it was writing."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


def _interrupt(owner: int, signum: int, frame: FrameType | None) -> None:
    if os.getpid() != owner:
        # A forked worker (DataLoader, prepare's pool), which a Ctrl-C reaches too: it acts
        # as by default, as the libraries that run it expect.
        if signum == signal.SIGINT:
            raise KeyboardInterrupt
        signal.signal(signum, signal.SIG_DFL)
        os.kill(os.getpid(), signum)
        return
    # One signal is enough: a second (an impatient Ctrl-C) must not cut the clean-up short.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    raise _Interrupted(signum)


def _fail(message: str, code: int) -> None:
    print(f"avrestore: error: {message}", file=sys.stderr)
    sys.exit(code)


def main() -> None:
    """Entry point: run the app; user errors, a full disk and SIGINT or SIGTERM end in one line
    on stderr (exit codes 2, 1, 130 and 143), never a traceback."""
    interrupt = functools.partial(_interrupt, os.getpid())
    handlers = {s: signal.signal(s, interrupt) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        from avrestore.cli.app import app

        app()
    except InputError as e:
        _fail(str(e), 2)
    except OSError as e:
        if e.errno != errno.ENOSPC:
            raise
        # atomic_path words it with the output's name and no file name of its own.
        _fail(e.strerror if e.filename is None else f"{e.strerror}: {e.filename}", 1)
    except _Interrupted as e:
        print("avrestore: interrupted; no partial output was kept", file=sys.stderr)
        sys.exit(128 + e.signum)
    finally:
        for signum, handler in handlers.items():  # for callers in the same process (tests)
            signal.signal(signum, handler)
