"""Path checks and atomic writes: inputs are never modified, outputs appear whole or not at all."""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import re
import secrets
import shutil
import socket
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


def sha256_file(path: str | os.PathLike) -> str:
    """The hex SHA-256 of a file's bytes, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def user_cache(*parts: str) -> Path:
    """The folder ``parts`` of avrestore's user cache, ``$XDG_CACHE_HOME/avrestore`` (default
    ``~/.cache/avrestore``); not created here."""
    root = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(root, "avrestore", *parts)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


# Temporary names carry the host and the process that owns them, so that a later run can tell
# the leftovers of a killed process (SIGKILL, power loss) from the work of a live one. The
# host keeps a run from taking a live process on another machine sharing the folder for dead.
_HOST = re.sub(r"[^A-Za-z0-9]", "", socket.gethostname())[:32] or "host"
_OWNED = re.compile(r"^\..*\.avrestore-(?P<host>[A-Za-z0-9]+)-(?P<pid>\d+)-[^.]*\.part")
_swept: set[Path] = set()


def _owned_name(folder: Path, name: str, suffix: str) -> Path:
    """A fresh temporary path in ``folder``, named after ``name`` and owned by this process.

    The name is chosen before the file is made (mkstemp names it after making it), so a
    signal arriving the instant the file appears still finds the name to remove in ``finally``.
    """
    return folder / f".{name}.avrestore-{_HOST}-{os.getpid()}-{secrets.token_hex(6)}{suffix}"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's live process
        pass
    return True


def remove_stale(folder: str | os.PathLike) -> None:
    """Remove the temporary files and folders in ``folder`` left by dead processes of this host.

    Each folder is swept once per process: a sweep lists it whole.
    """
    folder = Path(folder)
    if folder.resolve() in _swept:
        return
    _swept.add(folder.resolve())
    try:
        with os.scandir(folder) as entries:
            stale = [
                Path(e.path)
                for e in entries
                if (m := _OWNED.match(e.name)) and m["host"] == _HOST and not _alive(int(m["pid"]))
            ]
    except OSError:  # a folder that cannot be listed (or is missing): writing will say why
        return
    for path in stale:
        # Best effort: another run may be sweeping the folder too, or the file be another
        # user's; neither is a reason to fail this run.
        with contextlib.suppress(OSError):
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path)
            else:
                path.unlink()


@contextlib.contextmanager
def scratch_file(like: str | os.PathLike) -> Iterator[Path]:
    """Yield a new temporary path beside ``like``, named after it; remove it on exit.

    The suffix is kept so that container formats are guessed from it (``.mp4``, ``.png``).
    A killed process's leftovers are removed by the next process writing in the folder.
    """
    like = Path(like)
    folder = like.parent
    remove_stale(folder)
    tmp = _owned_name(folder, like.stem, f".part{like.suffix}")
    try:
        try:  # owner-only, as mkstemp makes it; 48 random bits and our pid: it cannot exist
            os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
        except OSError as e:  # e.g. a read-only file system, which os.access does not see
            raise InputError(f"cannot write in {folder}: {e.strerror}") from None
        yield tmp
    finally:
        tmp.unlink(missing_ok=True)


@contextlib.contextmanager
def _naming_a_full_disk(final: Path) -> Iterator[None]:
    """Reword ENOSPC, raised wherever the writing failed (often a library's temporary name),
    to name the output the user asked for."""
    try:
        yield
    except OSError as e:
        if e.errno != errno.ENOSPC:
            raise
        message = f"no space left on the device writing {final}; nothing was kept"
        raise OSError(errno.ENOSPC, message) from None


@contextlib.contextmanager
def atomic_path(final: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``final``; rename it onto ``final`` only on success.

    A full disk raises OSError (ENOSPC) naming ``final``, with the temporary file removed.
    """
    final = Path(final)
    with scratch_file(final) as tmp, _naming_a_full_disk(final):
        yield tmp
        # The file was made owner-only (0600); give it the mode a plain open() would.
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, final)


@contextlib.contextmanager
def atomic_dir(final: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary folder beside ``final``; rename it onto ``final`` only on success.

    A full disk raises OSError (ENOSPC) naming ``final``, with the temporary folder removed.
    """
    final = Path(final)
    remove_stale(final.parent)
    tmp = _owned_name(final.parent, final.name, ".part")
    try:
        tmp.mkdir(mode=0o700)  # inside the try: see _owned_name
        with _naming_a_full_disk(final):
            yield tmp
            os.chmod(tmp, 0o777 & ~_umask())  # made owner-only (0700) above
            if final.exists():
                shutil.rmtree(final)
            os.replace(tmp, final)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)
