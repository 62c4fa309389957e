"""An uploaded video: written to the job's folder as it arrives, then checked to be a video
within the page's length limit before any work starts."""

from __future__ import annotations

import errno
import re
from pathlib import Path
from typing import BinaryIO

from avrestore.errors import InputError
from avrestore.media.video import VideoInfo, probe

CHUNK = 1 << 20  # bytes read from the request at a time: memory stays flat for any size


class DiskFull(Exception):
    """The upload did not fit on the disk; its message is for the page."""


def safe_name(name: str) -> str:
    """``name`` (the browser's file name) as a plain file name: its last path part, with
    anything but letters, digits, dots, dashes and underscores replaced; never hidden."""
    base = re.sub(r"[^A-Za-z0-9._-]", "_", name.replace("\\", "/").rsplit("/", 1)[-1])
    return base.lstrip(".")[-100:] or "upload"


def save_upload(body: BinaryIO, length: int, path: Path) -> None:
    """Copy the ``length`` bytes of ``body`` to ``path``. InputError if the request ends
    early; DiskFull if the disk does; the caller removes ``path`` either way."""
    remaining = length
    try:
        with open(path, "wb") as out:
            while remaining:
                chunk = body.read(min(CHUNK, remaining))
                if not chunk:
                    got = length - remaining
                    raise InputError(f"the upload stopped after {got} of {length} bytes")
                out.write(chunk)
                remaining -= len(chunk)
    except OSError as e:
        if e.errno != errno.ENOSPC:
            raise
        raise DiskFull(
            f"no space left on the disk for the upload ({length / 1e6:.0f} MB); nothing was kept"
        ) from None


def check_video(path: Path, name: str, max_seconds: float) -> VideoInfo:
    """``path``'s header, if it is a video (not a still picture) of at most ``max_seconds``;
    else InputError naming the file as ``name``."""
    try:
        info = probe(path)
    except InputError as e:
        raise InputError(f"{name} is not a video: {str(e).replace(str(path), name)}") from None
    if info.frame_count < 2:
        raise InputError(f"{name} is a still picture, not a video")
    seconds = info.frame_count / info.fps
    if seconds > max_seconds:
        raise InputError(
            f"{name} is {seconds:.1f} s long; this page restores videos of up to "
            f"{max_seconds:g} s (avrestore serve --max-seconds)"
        )
    return info
