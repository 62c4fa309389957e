"""Path checks and atomic writes: inputs are never modified, outputs appear whole or not at all."""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

from avrestore.errors import InputError


def existing_file(path: str | os.PathLike) -> Path:
    """Return ``path`` as a Path, or raise InputError if it is not an existing file."""
    p = Path(path)
    if not p.exists():
        raise InputError(f"no such file: {p}")
    if not p.is_file():
        raise InputError(f"not a file: {p}")
    return p


def check_output(output: str | os.PathLike, *inputs: str | os.PathLike) -> Path:
    """Validate an output path: not one of the inputs, and its folder exists and is writable."""
    out = Path(output)
    for inp in inputs:
        if Path(inp).exists() and out.exists() and os.path.samefile(inp, out):
            raise InputError(f"output {out} is the input; choose another path")
        if Path(inp).resolve() == out.resolve():
            raise InputError(f"output {out} is the input; choose another path")
    folder = out.parent if str(out.parent) else Path(".")
    if not folder.is_dir():
        raise InputError(f"output folder does not exist: {folder}")
    if not os.access(folder, os.W_OK):
        raise InputError(f"output folder is not writable: {folder}")
    if out.is_dir():
        raise InputError(f"output is a folder: {out}")
    return out


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_path(final: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``final``; rename it onto ``final`` only on success.

    The suffix is kept so that container formats are guessed from it (``.mp4``, ``.png``).
    """
    final = Path(final)
    try:
        fd, tmp = tempfile.mkstemp(
            prefix=f".{final.stem}.", suffix=f".part{final.suffix}", dir=final.parent
        )
    except OSError as e:  # e.g. a read-only file system, which os.access does not see
        raise InputError(f"cannot write in {final.parent}: {e.strerror}") from None
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        # mkstemp makes the file owner-only (0600); give it the mode a plain open() would.
        os.chmod(tmp_path, 0o666 & ~_umask())
        os.replace(tmp_path, final)
    finally:
        tmp_path.unlink(missing_ok=True)


@contextlib.contextmanager
def atomic_dir(final: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary folder beside ``final``; rename it onto ``final`` only on success."""
    final = Path(final)
    tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.", suffix=".part", dir=final.parent))
    try:
        yield tmp
        os.chmod(tmp, 0o777 & ~_umask())  # mkdtemp makes it owner-only (0700)
        if final.exists():
            shutil.rmtree(final)
        os.replace(tmp, final)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)
