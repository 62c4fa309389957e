"""One restoration for the page, run in a process of its own: ``restore_video``, then the
before/after frames, reported as events ``(kind, value)`` on a queue:

- ``("progress", {"stage", "done", "total"})``: frames done of a stage (``find faces``,
  ``restore``, then ``before/after``);
- ``("note", text)``: a line ``restore_video`` says to the user (no audio track, odd size);
- ``("done", result)`` or ``("failed", message)``: the last event.

``restore_video`` reports its progress only as tqdm bars on stderr (it takes no callback), so
the worker's stderr is a stream that calls itself a terminal (tqdm draws bars only there) and
reads each bar drawn back into an event. A process of its own also keeps the server answering
while torch and dlib hold the CPU, and lets the server stop a restoration at once.
"""

from __future__ import annotations

import errno
import io
import re
import sys
import traceback
from collections.abc import Callable
from dataclasses import asdict, dataclass
from multiprocessing.queues import Queue
from pathlib import Path

from avrestore.errors import InputError
from avrestore.restore.video import restore_video, task_scale
from avrestore.web.previews import write_pairs

RESTORED = "restored.mp4"
# tqdm's default bar: "restore:  40%|####      | 30/75 [00:01<00:02, 20.1frame/s]".
_BAR = re.compile(r"(?P<stage>[^:|]+): *\d+%\|[^|]*\| *(?P<done>\d+)/(?P<total>\d+)\b")
_NOTE = "avrestore: "

Send = Callable[[tuple[str, object]], None]


@dataclass(frozen=True)
class Request:
    """A job: restore ``source`` (shown as ``name``) for ``task`` with the weights ``model``,
    writing into ``folder``."""

    source: Path
    name: str
    task: str
    model: Path
    folder: Path


def _shown(text: str, request: Request) -> str:
    """``text`` naming the source as the user knows it, not by its temporary path."""
    return text.replace(str(request.source), request.name)


class EventStream(io.TextIOBase):
    """A text stream that turns tqdm's bars into progress events and ``avrestore:`` lines into
    notes about ``request``, and drops anything else (library warnings)."""

    def __init__(self, send: Send, request: Request) -> None:
        super().__init__()
        self._send, self._request = send, request
        self._pending = ""

    def isatty(self) -> bool:
        """True: ``restore_video``'s bars are drawn only on a terminal."""
        return True

    def writable(self) -> bool:
        """True: this is an output stream."""
        return True

    def write(self, text: str) -> int:
        """Read every whole line (tqdm ends a redraw with a carriage return) of ``text``."""
        *lines, self._pending = re.split(r"[\r\n]", self._pending + text)
        for line in lines:
            if bar := _BAR.match(line):
                done, total = int(bar["done"]), int(bar["total"])
                self._send(("progress", {"stage": bar["stage"], "done": done, "total": total}))
            elif line.startswith(_NOTE):
                note = line.removeprefix(_NOTE).removeprefix("restore: ")
                self._send(("note", _shown(note, self._request)))
        return len(text)


def _restore(request: Request, send: Send) -> dict:
    """Restore, check a face was found, and write the before/after frames: the result."""
    out = request.folder / RESTORED
    summary = restore_video(request.source, out, request.task, model=request.model, progress=True)
    if summary.tracks == 0:
        raise InputError(f"no face found in {request.name}: there is nothing to restore")
    send(("progress", {"stage": "before/after", "done": 0, "total": 1}))
    scale = task_scale(request.task, None)
    pairs = write_pairs(request.source, out, summary.frames, summary.fps, scale, request.folder)
    return {
        "frames": summary.frames,
        "fps": summary.fps,
        "restored_frames": summary.restored_frames,
        "tracks": summary.tracks,
        "has_audio": summary.has_audio,
        "seconds": summary.seconds,
        "video": RESTORED,
        "pairs": [asdict(p) for p in pairs],
    }


def _message(error: Exception, request: Request) -> str:
    """What the page says about ``error``."""
    if isinstance(error, InputError):
        return _shown(str(error), request)
    if isinstance(error, OSError) and error.errno == errno.ENOSPC:
        return "no space left on the disk for the restored video; nothing was kept"
    # A bug, not the user's doing: the page says what failed, the server's console where.
    traceback.print_exception(error, file=sys.__stderr__)
    return f"the restoration failed: {type(error).__name__}: {error}"


def work(request: Request, events: Queue) -> None:
    """The worker process's body: run ``request``, reporting on ``events``."""
    send = events.put
    sys.stderr = EventStream(send, request)
    try:
        send(("done", _restore(request, send)))
    except Exception as e:
        send(("failed", _message(e, request)))
