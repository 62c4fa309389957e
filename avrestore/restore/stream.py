"""The two passes over a video: find the faces (keeping boxes only), then stream the frames
through cropping, restoration and pasting, holding no more than a block of frames at a time.

Frames are decoded at the video's average frame rate (variable-rate input is resampled, as
``avrestore prepare`` does); with ``overlap``, ahead of the model in a thread of their own
(``restore.overlap``). For super-resolution every frame is first upscaled, bicubic, by
the scale; faces are found, cropped and pasted on the upscaled frame.
"""

from __future__ import annotations

import contextlib
import os
from collections import deque
from collections.abc import Generator, Iterator
from dataclasses import dataclass

import numpy as np
from tqdm import tqdm

from avrestore.data.prepare import PrepareOptions
from avrestore.degrade import upscale
from avrestore.errors import InputError
from avrestore.faces.crop import crop_square
from avrestore.faces.detect import FaceDetector
from avrestore.faces.scan import Detector, scan_faces
from avrestore.media.video import iter_frames, probe
from avrestore.restore.blocks import BlockRestorer, plan_blocks
from avrestore.restore.crops import FaceRestorer
from avrestore.restore.overlap import prefetched
from avrestore.restore.paste import paste_face
from avrestore.restore.timing import StageClock
from avrestore.restore.tracks import Track, plan_tracks

# Crops, detection and smoothing as the models' training clips were prepared.
TRAINING_CLIPS = PrepareOptions()
CHUNK = 16  # frames decoded at a time
BLOCK = 64  # frames restored at a time: the frames held grow with it, the re-read context not
# Frames queued between the threads with ``overlap``: decoding and encoding take milliseconds a
# frame against the model's tenths of a second, so a short queue keeps them busy, and a frame
# waiting in a longer one would only add to its latency.
DEPTH = 4


def upscaled(frames: np.ndarray, scale: int) -> np.ndarray:
    """Frames (n, H, W, 3) bicubic-upscaled by ``scale`` (unchanged for 1)."""
    if scale == 1:
        return frames
    h, w = frames.shape[1:3]
    return upscale(frames, (h * scale, w * scale))


@dataclass(frozen=True)
class RestorePlan:
    """What the first pass found: the frame rate and count to decode at, the upscaling factor
    (1 unless super-resolving), and the face tracks (largest first) on the upscaled frames."""

    fps: float
    frames: int
    scale: int
    tracks: list[Track]
    size: int = TRAINING_CLIPS.size


def _decoded(
    path: str | os.PathLike, fps: float, scale: int, max_frames: int | None
) -> Iterator[np.ndarray]:
    """Every frame, upscaled by ``scale``."""
    for chunk in iter_frames(path, chunk_size=CHUNK, fps=fps, max_frames=max_frames):
        yield from upscaled(chunk.frames, scale)


def _marked(frames: Iterator[np.ndarray], clock: StageClock) -> Iterator[np.ndarray]:
    """``frames``, each marked decoded on ``clock`` (frame 0 first) as it comes."""
    for t, frame in enumerate(frames):
        clock.decoded(t)
        yield frame


class _CountedDetector:
    """A detector whose searches in worker threads count their CPU seconds in ``detect``."""

    def __init__(self, detector: FaceDetector, clock: StageClock) -> None:
        self._detector, self._clock = detector, clock

    def detect(self, image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The wrapped detector's boxes and scores."""
        with self._clock.worker("detect"):
            return self._detector.detect(image)


def plan_restoration(
    path: str | os.PathLike,
    scale: int = 1,
    all_faces: bool = False,
    max_frames: int | None = None,
    progress: bool = False,
    size: int = TRAINING_CLIPS.size,
    detect_every: int = TRAINING_CLIPS.detect_every,
    clock: StageClock | None = None,
    workers: int = 1,
) -> RestorePlan:
    """Pass 1: search every ``detect_every``-th frame for faces (the tracker bridges the
    others) and plan the tracks; faces will be cut at ``size`` (the model's crop size).
    ``clock`` counts the decode and detect stages; ``workers`` frames are searched at once
    (``scan_faces``)."""
    clock = StageClock() if clock is None else clock
    with clock.stage("detect"):
        info = probe(path)
        detector: Detector = FaceDetector(TRAINING_CLIPS.detector)
        if workers > 1:
            detector = _CountedDetector(detector, clock)
        frames = clock.timed("decode", _decoded(path, info.fps, scale, max_frames))
        total = min(info.frame_count, max_frames or info.frame_count)  # for the ETA only
        # disable=None: a bar (rate, ETA) on an interactive stderr, silence in logs and pipes.
        bar = tqdm(frames, "find faces", total, unit="frame", disable=None if progress else True)
        with bar:
            detections = scan_faces(bar, detector, detect_every, workers)
        if not detections:
            raise InputError(f"no frames could be decoded from {path}")
        tracks = plan_tracks(detections, info.fps, TRAINING_CLIPS.smooth_sigma, all_faces)
    return RestorePlan(info.fps, len(detections), scale, tracks, size)


def restored_frames(
    path: str | os.PathLike,
    plan: RestorePlan,
    restorer: FaceRestorer,
    block: int = BLOCK,
    progress: bool = False,
    overlap: bool = False,
) -> Generator[tuple[np.ndarray, np.ndarray], None, None]:
    """Pass 2: ``(input frame, restored frame)`` for every frame in order; the input frame is
    the one faces were restored on (upscaled for ``sr``). Outside the pasted faces the
    restored frame equals it bit for bit. ``block``: frames restored at a time (the latency
    and the frames held grow with it); ``overlap``: decode in a thread of its own; the
    restorer's clock counts the decode and paste stages and marks each frame decoded."""
    clock = restorer.clock
    tracks = plan.tracks
    streams = [
        BlockRestorer(
            plan_blocks(tr.runs(), restorer.frames_in, restorer.frames_out, block), restorer
        )
        for tr in tracks
    ]
    cuts: list[dict[int, tuple[np.ndarray, np.ndarray]]] = [{} for _ in tracks]  # crop, box
    faces: list[dict[int, np.ndarray]] = [{} for _ in tracks]  # restored crop per frame
    pending: deque[tuple[int, np.ndarray]] = deque()

    def done(t: int) -> bool:
        return all(t in faces[k] or not tr.active[t] for k, tr in enumerate(tracks))

    decoded = clock.timed("decode", _decoded(path, plan.fps, plan.scale, plan.frames))
    frames = _marked(decoded, clock)
    source = prefetched(frames, DEPTH) if overlap else frames
    t = 0
    bar = tqdm(total=plan.frames, desc="restore", unit="frame", disable=None if progress else True)
    # closing: leaving early stops the decoding thread before the caller goes on.
    with bar, contextlib.closing(source):
        for frame in source:
            with clock.stage("paste"):
                for k, tr in enumerate(tracks):
                    if tr.active[t]:
                        cuts[k][t] = crop_square(frame, tr.boxes[t], plan.size)
                        streams[k].add(t, cuts[k][t][0])
            pending.append((t, frame))
            t += 1
            for k, stream in enumerate(streams):
                faces[k].update(stream.ready(t))
            while pending and done(pending[0][0]):
                i, before = pending.popleft()
                with clock.stage("paste"):
                    after = before.copy()
                    for k in reversed(range(len(tracks))):  # the largest face last, on top
                        if i in faces[k]:
                            paste_face(after, faces[k].pop(i), *cuts[k].pop(i))
                bar.update()
                yield before, after
    if t != plan.frames or pending:
        raise InputError(f"decoding {path} is not repeatable: {plan.frames} frames, then {t}")
