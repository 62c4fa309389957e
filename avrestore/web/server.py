"""The local web page of ``avrestore serve``: upload a video (or pick the sample clip), choose
the damage and the model, follow the progress, then compare, play and download the result.

Served by the standard library's ``ThreadingHTTPServer``, not Gradio nor FastAPI: the page is
for one person on their own computer, one restoration at a time, and needs five routes, so a
framework (Gradio pulls in dozens of packages, FastAPI and uvicorn a handful, and both want
``python-multipart`` for uploads) would add install weight and no feature. Uploads come as
the raw request body (the page sends the file itself, its name in the query), so there is no
multipart parsing; the restored video is served with byte ranges, so the player can seek.

Routes: ``GET /`` the page; ``GET /api/config`` the tasks, models with their leaderboard
figures, the sample and the limits; ``POST /api/job?task=&model=&name=`` (body: the video) or
``?task=&model=&sample=`` starts a job; ``GET /api/job`` its status; ``GET
/files/<job>/<name>`` its restored video and before/after frames.
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import mimetypes
import re
import shutil
import sys
import tempfile
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import parse_qs, urlsplit

from avrestore.errors import InputError
from avrestore.samples import DEFAULT_SAMPLE, SAMPLES, sample_path
from avrestore.web.jobs import Busy, JobRunner
from avrestore.web.uploads import CHUNK, DiskFull, check_video, safe_name, save_upload

if TYPE_CHECKING:
    from avrestore.web.catalog import ModelChoice

MAX_UPLOAD_BYTES = 4 << 30  # 4 GiB: above any video of the default length at sane quality
_FILE_ROUTE = re.compile(r"/files/(?P<job>[0-9a-f]+)/(?P<name>[A-Za-z0-9._-]+)")
_RANGE = re.compile(r"bytes=(?P<start>\d*)-(?P<end>\d*)")


@dataclass(frozen=True)
class PageOptions:
    """What the page offers: the checkpoints of ``weights_dir`` (default: the shipped ones)
    with the figures of the ``leaderboard`` results cache (default: the checkout's), videos of
    up to ``max_seconds``."""

    weights_dir: Path | None = None
    leaderboard: Path | None = None
    max_seconds: float = 120.0


def is_local(host: str) -> bool:
    """Whether ``host`` is a loopback address, reachable from this computer only."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:  # a host name: it may resolve to any interface
        return False


class _App:
    """What the request handlers share: the options, the jobs and the (lazily read) models."""

    def __init__(self, options: PageOptions, runner: JobRunner, host: str) -> None:
        self.options, self.runner, self.host = options, runner, host
        self._lock = threading.Lock()
        self._choices: dict[str, list[ModelChoice]] | None = None

    def choices(self) -> dict[str, list[ModelChoice]]:
        """Task → its model choices, read on first use: the catalog loads torch (seconds),
        which would delay the server's start and every Ctrl-C test of it."""
        from avrestore.web.catalog import model_choices

        with self._lock:
            if self._choices is None:
                self._choices = model_choices(self.options.weights_dir, self.options.leaderboard)
            return self._choices

    def config(self) -> dict:
        """The page's settings as JSON."""
        from avrestore.web.catalog import DAMAGE

        sample = SAMPLES[DEFAULT_SAMPLE]
        return {
            "tasks": [
                {
                    "task": task,
                    "damage": DAMAGE.get(task, task),  # a task added to restore: its own name
                    "models": [c.as_json() for c in choices],
                }
                for task, choices in self.choices().items()
            ],
            "sample": {
                "name": sample.name,
                "licence": sample.licence,
                "attribution": sample.attribution,
            },
            "max_seconds": self.options.max_seconds,
            "max_upload_bytes": MAX_UPLOAD_BYTES,
            "host": self.host,
            "local_only": is_local(self.host),
        }


class _Handler(BaseHTTPRequestHandler):
    server: PageServer

    def log_message(self, format: str, *args: object) -> None:
        """Silent: the page polls twice a second; the console keeps the server's own lines."""

    def do_GET(self) -> None:
        """The page, its settings, the job's status and the job's files."""
        path = urlsplit(self.path).path
        app = self.server.app
        if path == "/":
            page = resources.files("avrestore.web").joinpath("page.html").read_bytes()
            self._send(HTTPStatus.OK, page, "text/html; charset=utf-8")
        elif path == "/api/config":
            try:
                self._json(HTTPStatus.OK, app.config())
            except InputError as e:  # a damaged weights file or leaderboard cache
                self._json(HTTPStatus.INTERNAL_SERVER_ERROR, {"error": str(e)})
        elif path == "/api/job":
            self._json(HTTPStatus.OK, app.runner.current() or {"state": "none"})
        elif (route := _FILE_ROUTE.fullmatch(path)) and (
            file := app.runner.result_file(route["job"], route["name"])
        ):
            self._send_file(file)
        else:
            self._json(HTTPStatus.NOT_FOUND, {"error": f"nothing at {path}"})

    def do_POST(self) -> None:
        """Start a job: the body is the video, or the query names the sample."""
        if urlsplit(self.path).path != "/api/job":
            self._json(HTTPStatus.NOT_FOUND, {"error": "POST a job to /api/job"})
            return
        query = {k: v[-1] for k, v in parse_qs(urlsplit(self.path).query).items()}
        try:
            status = self._submit(query)
        except Busy as e:
            self._json(HTTPStatus.CONFLICT, {"error": str(e)})
        except DiskFull as e:
            self._json(HTTPStatus.INSUFFICIENT_STORAGE, {"error": str(e)})
        except InputError as e:
            self._json(HTTPStatus.BAD_REQUEST, {"error": str(e)})
        else:
            self._json(HTTPStatus.ACCEPTED, status)

    def _submit(self, query: dict[str, str]) -> dict:
        app = self.server.app
        task, model = query.get("task", ""), query.get("model", "")
        choices = app.choices()
        if task not in choices:
            raise InputError(f"choose the damage to repair, one of {', '.join(choices)}")
        weights = next((c.path for c in choices[task] if c.name == model), None)
        if weights is None:
            raise InputError(f"choose a model for {task}: {model!r} is not one of this page's")
        length = int(self.headers.get("Content-Length") or 0)
        if "sample" in query:
            name = query["sample"]
            prepare = self._sample(name)
        elif length == 0:
            raise InputError("choose a video to upload, or the sample clip")
        elif length > MAX_UPLOAD_BYTES:
            raise InputError(f"the upload is larger than {MAX_UPLOAD_BYTES >> 30} GiB")
        else:
            name = safe_name(query.get("name", ""))
            prepare = self._upload(name, length)
        return app.runner.submit(name, task, model, weights, prepare)

    def _sample(self, name: str) -> Callable[[Path], Path]:
        max_seconds = self.server.app.options.max_seconds

        def prepare(_folder: Path) -> Path:
            path = sample_path(name)
            check_video(path, name, max_seconds)
            return path

        return prepare

    def _upload(self, name: str, length: int) -> Callable[[Path], Path]:
        max_seconds = self.server.app.options.max_seconds

        def prepare(folder: Path) -> Path:
            # A folder of its own: the upload's name cannot clash with the results'.
            path = folder / "upload" / name
            path.parent.mkdir()
            save_upload(self.rfile, length, path)
            check_video(path, name, max_seconds)
            return path

        return prepare

    def _json(self, status: HTTPStatus, body: dict) -> None:
        self._send(status, json.dumps(body).encode(), "application/json")

    def _send(self, status: HTTPStatus, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(body)

    def _send_file(self, path: Path) -> None:
        """``path`` whole, or the one byte range asked for (the video player seeks so)."""
        size = path.stat().st_size
        start, end, status = 0, size - 1, HTTPStatus.OK
        if wanted := _RANGE.fullmatch(self.headers.get("Range", "")):
            if wanted["start"]:
                start = int(wanted["start"])
                end = min(int(wanted["end"] or end), end)
            elif wanted["end"]:  # a suffix: the last N bytes
                start = max(0, size - int(wanted["end"]))
            if start > end:
                self.send_response(HTTPStatus.REQUESTED_RANGE_NOT_SATISFIABLE)
                self.send_header("Content-Range", f"bytes */{size}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            status = HTTPStatus.PARTIAL_CONTENT
        self.send_response(status)
        kind = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(end - start + 1))
        self.send_header("Accept-Ranges", "bytes")
        if status == HTTPStatus.PARTIAL_CONTENT:
            self.send_header("Content-Range", f"bytes {start}-{end}/{size}")
        self.end_headers()
        with path.open("rb") as f:
            f.seek(start)
            remaining = end - start + 1
            while remaining and (chunk := f.read(min(CHUNK, remaining))):
                self.wfile.write(chunk)
                remaining -= len(chunk)


class PageServer(ThreadingHTTPServer):
    """The page's HTTP server; ``app`` holds what its handlers share, ``root`` the temporary
    folder of the uploads and results."""

    daemon_threads = True  # a browser's open connection must not hold up stopping

    def __init__(self, address: tuple[str, int], app: _App, root: Path) -> None:
        super().__init__(address, _Handler)
        self.app, self.root = app, root

    @property
    def url(self) -> str:
        """The page's address, with the port bound (port 0 asks for any free one)."""
        host, port = self.server_address[:2]
        return f"http://{host}:{port}/"

    def handle_error(self, request: object, client_address: object) -> None:
        """Ignore a browser that hung up (the video player drops connections when it seeks);
        report anything else."""
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


@contextlib.contextmanager
def page_server(host: str, port: int, options: PageOptions) -> Iterator[PageServer]:
    """A bound page server (not yet serving) on ``host:port``; on exit the running restoration
    is stopped and the temporary folder of uploads and results removed."""
    root = Path(tempfile.mkdtemp(prefix="avrestore-web-"))
    runner = JobRunner(root)
    try:
        try:
            server = PageServer((host, port), _App(options, runner, host), root)
        except OSError as e:
            raise InputError(f"cannot serve on {host}:{port}: {e.strerror}") from None
        with server:
            yield server
    finally:
        runner.close()
        shutil.rmtree(root, ignore_errors=True)
