"""The page's jobs: one restoration at a time, each in a worker process, with its progress.

Every job has a folder under the server's temporary root for its upload and results. Only the
latest job is kept: submitting one removes the folder of the one before, and a job that fails
(a bad upload, no face, a full disk) removes its own, so nothing is left behind.
"""

from __future__ import annotations

import multiprocessing
import queue
import secrets
import shutil
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from multiprocessing.context import BaseContext
from multiprocessing.process import BaseProcess
from pathlib import Path
from typing import Any

ACTIVE = ("starting", "running")
_POLL = 0.5  # seconds between checks that the worker is still alive


class Busy(Exception):
    """A restoration is already running."""


@dataclass
class Job:
    """A restoration's state as the page shows it: ``starting`` (upload, model loading),
    ``running`` (frames ``done`` of ``total`` in ``stage``), then ``done`` with ``result`` or
    ``failed`` with ``message``."""

    id: str
    folder: Path
    name: str
    task: str
    model: str
    state: str = "starting"
    stage: str = ""
    done: int = 0
    total: int = 0
    message: str = ""
    notes: list[str] = field(default_factory=list)
    result: dict | None = None
    started: float = field(default_factory=time.monotonic)
    stage_started: float = 0.0
    updated: float = 0.0
    eta: float | None = None  # seconds left in the stage, as of ``updated``

    def apply(self, kind: str, value: Any, now: float) -> None:
        """Take one of the worker's events (``avrestore.web.worker``) at time ``now``."""
        if kind == "progress":
            if value["stage"] != self.stage:
                self.stage, self.stage_started = value["stage"], now
            self.state, self.updated = "running", now
            self.done, self.total = value["done"], value["total"]
            # The stage's own rate so far: finding faces and restoring differ by far per frame.
            rate = self.done / (now - self.stage_started) if now > self.stage_started else 0.0
            self.eta = (self.total - self.done) / rate if rate > 0 else None
        elif kind == "note":
            self.notes.append(str(value))
        elif kind == "done":
            self.state, self.result, self.eta = "done", value, None
        elif kind == "failed":
            self.state, self.message, self.eta = "failed", str(value), None

    def status(self, now: float) -> dict:
        """The job as JSON for the page, its ETA counted down to ``now``."""
        eta = None if self.eta is None else max(0.0, self.eta - (now - self.updated))
        return {
            "id": self.id,
            "name": self.name,
            "task": self.task,
            "model": self.model,
            "state": self.state,
            "stage": self.stage,
            "done": self.done,
            "total": self.total,
            "eta_seconds": eta,
            "elapsed_seconds": now - self.started,
            "message": self.message,
            "notes": self.notes,
            "result": self.result,
        }

    def files(self) -> set[str]:
        """The names of the result files the page may fetch: none until the job is done."""
        if self.result is None:
            return set()
        pairs = self.result["pairs"]
        return {self.result["video"], *(p["before"] for p in pairs), *(p["after"] for p in pairs)}


def _context() -> BaseContext:
    """Where workers start: forked from a fork server that has imported the worker (torch,
    dlib) once, so a job starts at once; a fresh interpreter where there is no fork."""
    if "forkserver" not in multiprocessing.get_all_start_methods():
        return multiprocessing.get_context("spawn")
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(["avrestore.web.worker"])
    return context


class JobRunner:
    """Runs the page's jobs in folders under ``root``, one at a time."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._lock = threading.Lock()
        self._job: Job | None = None
        self._process: BaseProcess | None = None
        self._watcher: threading.Thread | None = None
        self._closed = False

    def current(self) -> dict | None:
        """The latest job's status; None before the first."""
        with self._lock:
            return None if self._job is None else self._job.status(time.monotonic())

    def result_file(self, job_id: str, name: str) -> Path | None:
        """The path of result file ``name`` of the latest job if it is ``job_id``."""
        with self._lock:
            job = self._job
            if job is None or job.id != job_id or name not in job.files():
                return None
            return job.folder / name

    def submit(
        self, name: str, task: str, model: str, weights: Path, prepare: Callable[[Path], Path]
    ) -> dict:
        """Start restoring for ``task`` with ``model`` (its file ``weights``) the video that
        ``prepare`` puts in the job's folder (it returns its path, or raises: the folder is
        then removed). Busy while a job is active. The new job's status."""
        with self._lock:
            if self._closed or (self._job is not None and self._job.state in ACTIVE):
                raise Busy("a restoration is already running: one runs at a time")
            if self._job is not None:
                shutil.rmtree(self._job.folder, ignore_errors=True)
            job_id = secrets.token_hex(8)
            job = self._job = Job(job_id, self.root / job_id, name, task, model)
            job.folder.mkdir()
        try:
            source = prepare(job.folder)
        except BaseException:
            with self._lock:
                self._job = None
            shutil.rmtree(job.folder, ignore_errors=True)
            raise
        with self._lock:
            # Started by a thread: the first start loads torch and dlib (seconds), which the
            # page shows as the job starting rather than as a slow upload.
            self._watcher = threading.Thread(
                target=self._run, args=(job, source, weights), daemon=True
            )
            self._watcher.start()
            return job.status(time.monotonic())

    def _run(self, job: Job, source: Path, weights: Path) -> None:
        """Run ``job`` in a worker process and follow it to its end."""
        try:
            # Imported here: the worker loads torch and dlib, which the page never needs.
            from avrestore.web.worker import Request, work

            context = _context()
            events = context.Queue()
            request = Request(source, job.name, job.task, weights, job.folder)
            process = context.Process(target=work, args=(request, events), daemon=True)
            process.start()
        except Exception as e:  # e.g. no processes left: the page must not wait forever
            with self._lock:
                job.apply("failed", f"the restoration could not start: {e}", time.monotonic())
            shutil.rmtree(job.folder, ignore_errors=True)
            return
        with self._lock:
            self._process = process
            stopping = self._closed
        if stopping:  # close() came while the process started, and did not see it
            process.terminate()
        self._watch(job, process, events)

    def _watch(self, job: Job, process: BaseProcess, events: queue.Queue) -> None:
        """Apply the worker's events to ``job`` until its last; remove a failed job's folder."""
        while True:
            try:
                kind, value = events.get(timeout=_POLL)
            except queue.Empty:
                if process.is_alive():
                    continue
                try:  # its last event may have arrived just as it ended
                    kind, value = events.get(timeout=_POLL)
                except queue.Empty:
                    kind = "failed"
                    value = f"the restoration stopped unexpectedly (exit code {process.exitcode})"
            if kind in ("done", "failed"):
                break
            with self._lock:
                job.apply(kind, value, time.monotonic())
        # Cleaned up before the last state is shown: a page (or test) that sees "failed" then
        # finds nothing left behind.
        process.join()
        if kind == "failed":
            shutil.rmtree(job.folder, ignore_errors=True)
        with self._lock:
            job.apply(kind, value, time.monotonic())

    def close(self) -> None:
        """Stop the running restoration, if any, and refuse new ones."""
        with self._lock:
            self._closed = True
            process, watcher = self._process, self._watcher
        if process is not None and process.is_alive():
            process.terminate()
            process.join(5)
            if process.is_alive():
                process.kill()
        if watcher is not None:
            watcher.join(5)
