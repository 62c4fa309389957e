"""Decode video to upright RGB uint8 frames in chunks, and encode frames to H.264 with an AAC
track.

Frames are decoded as they are meant to be seen: a display matrix (phones store their pictures
sideways and say how to turn them) is applied, and the sizes ``probe`` reports are upright. The
files written carry upright pixels and no display matrix.
"""

from __future__ import annotations

import contextlib
import math
import os
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
from av.sidedata.sidedata import Type as SideDataType

from avrestore.errors import InputError
from avrestore.media.audio import Audio
from avrestore.media.colour import (
    DEFAULT_SPEC,
    SUBSAMPLING,
    WRITABLE,
    ColourSpec,
    rgb_to_yuv,
    spec_of,
    yuv_to_rgb,
)
from avrestore.media.files import existing_file


@dataclass(frozen=True)
class VideoInfo:
    """What a video file holds, read from its headers (``frame_count`` is exact when the
    container states it, else ``duration * fps`` rounded half up). ``width`` and ``height`` are
    the upright size, as frames are decoded."""

    path: Path
    width: int
    height: int
    fps: float
    frame_count: int
    duration: float
    audio_rate: int | None
    audio_channels: int | None
    colour: ColourSpec = DEFAULT_SPEC

    @property
    def has_audio(self) -> bool:
        """True when the file has an audio stream."""
        return self.audio_rate is not None


@dataclass(frozen=True)
class FrameChunk:
    """A run of consecutive frames: ``frames`` (n, H, W, 3) uint8 RGB, ``times`` (n,) seconds,
    and ``start``, the index of the first frame in the whole video."""

    frames: np.ndarray
    times: np.ndarray
    start: int


def open_media(path: str | os.PathLike) -> av.container.InputContainer:
    """Open a media file for reading, turning PyAV's errors into one-line InputErrors."""
    p = existing_file(path)
    try:
        return av.open(str(p))
    except (av.error.FFmpegError, UnicodeDecodeError, ValueError) as e:
        raise InputError(f"not a readable media file: {p} ({e.__class__.__name__})") from None


def _video_stream(container: av.container.InputContainer, path: Path) -> av.video.VideoStream:
    if not container.streams.video:
        raise InputError(f"no video stream in {path}")
    return container.streams.video[0]


def _stream_fps(stream: av.video.VideoStream) -> Fraction:
    rate = stream.average_rate or stream.guessed_rate or stream.base_rate
    if not rate or rate <= 0:
        return Fraction(25)
    return Fraction(rate)


@dataclass(frozen=True)
class _Orientation:
    """How stored pixels are turned to be seen: transposed (a quarter turn), then mirrored."""

    transpose: bool = False
    flip_x: bool = False
    flip_y: bool = False

    def upright(self, img: np.ndarray) -> np.ndarray:
        """The image (H, W, C) as it is meant to be seen (a view, not a copy)."""
        if self.transpose:
            img = img.transpose(1, 0, 2)
        if self.flip_x:
            img = img[:, ::-1]
        if self.flip_y:
            img = img[::-1]
        return img


def _orientation(frame: av.VideoFrame) -> _Orientation:
    """The turn a frame's display matrix asks for, to the nearest quarter turn."""
    for data in frame.side_data:
        if data.type == SideDataType.DISPLAYMATRIX:
            m = np.frombuffer(bytes(data), np.int32)
            break
    else:
        return _Orientation()
    # FFmpeg shows stored pixel (x, y) at (a x + c y, b x + d y), with [a b u c d v x y w]
    # in 16.16 fixed point; a quarter turn puts the weight on b and c.
    a, b, c, d = (int(m[i]) for i in (0, 1, 3, 4))
    if abs(b) + abs(c) > abs(a) + abs(d):
        return _Orientation(transpose=True, flip_x=c < 0, flip_y=b < 0)
    return _Orientation(flip_x=a < 0, flip_y=d < 0)


def _first_orientation(c: av.container.InputContainer, v: av.video.VideoStream) -> _Orientation:
    """The orientation of the stream's first frame; none if it does not decode (decoding the
    file will say why)."""
    try:
        frame = next(c.decode(v), None)
    except av.error.FFmpegError:
        frame = None
    return _Orientation() if frame is None else _orientation(frame)


def _tagged_seconds(v: av.video.VideoStream) -> float | None:
    """The stream's own duration tag (Matroska's ``DURATION``, ``HH:MM:SS.fraction``): the
    container's duration is that of its longest stream, often the audio's."""
    tag = v.metadata.get("DURATION")
    try:
        h, m, sec = tag.split(":")
        return int(h) * 3600 + int(m) * 60 + float(sec)
    except (AttributeError, ValueError):
        return None


def probe(path: str | os.PathLike) -> VideoInfo:
    """Read a video's size, frame rate, length and audio format, decoding one frame only (for
    its display matrix)."""
    p = Path(path)
    with open_media(p) as c:
        v = _video_stream(c, p)
        fps = _stream_fps(v)
        if v.duration is not None and v.time_base is not None:
            duration = float(v.duration * v.time_base)
        elif (tagged := _tagged_seconds(v)) is not None:
            duration = tagged
        elif c.duration is not None:
            duration = c.duration / av.time_base
        else:
            duration = 0.0
        # Half up, not round()'s half-to-even: GRID's MPEG-PS clips state 2.98 s for 75 frames.
        frames = v.frames or math.floor(duration * fps + 0.5)
        a = c.streams.audio[0] if c.streams.audio else None
        cc = v.codec_context
        width, height = cc.width, cc.height
        if _first_orientation(c, v).transpose:
            width, height = height, width
        return VideoInfo(
            path=p,
            width=width,
            height=height,
            fps=float(fps),
            frame_count=int(frames),
            duration=duration,
            audio_rate=a.codec_context.sample_rate if a else None,
            audio_channels=a.codec_context.channels if a else None,
            colour=spec_of(cc.colorspace, cc.color_range, cc.pix_fmt or "", cc.height),
        )


def _frames(
    c: av.container.InputContainer, v: av.video.VideoStream, path: Path
) -> Iterator[av.VideoFrame]:
    """The stream's frames, as far as they decode. As FFmpeg does, a packet that does not
    decode is skipped, and the stream ends where the container cannot be read further: a file
    cut short ends in a partial packet. InputError if not one frame decodes."""
    decoded = 0
    failure: av.error.FFmpegError | None = None
    packets = c.demux(v)
    while True:
        try:
            packet = next(packets)
        except StopIteration:
            break  # the demuxer's last, empty packets have drained the decoder
        except av.error.FFmpegError as e:
            failure, packet = e, None  # None drains the decoder; then stop
        try:
            frames = v.decode(packet)
        except av.error.FFmpegError as e:
            failure, frames = e, []
        decoded += len(frames)
        yield from frames
        if packet is None:
            break
    if not decoded and failure is not None:
        raise InputError(f"cannot decode {path}: {failure}")


def _decoded(path: Path) -> Iterator[tuple[np.ndarray, float]]:
    """Every decoded frame, upright, as (RGB array, presentation time in seconds)."""
    with open_media(path) as c:
        v = _video_stream(c, path)
        v.thread_type = "AUTO"
        step = 1.0 / float(_stream_fps(v))
        last = None
        turn = None
        for frame in _frames(c, v, path):
            if turn is None:  # the first frame's, for all: every frame keeps one size
                turn = _orientation(frame)
            t = frame.time
            if t is None:
                t = 0.0 if last is None else last + step
            last = t
            yield turn.upright(frame_to_rgb(frame)), t


def frame_to_rgb(frame: av.VideoFrame) -> np.ndarray:
    """A decoded frame as RGB uint8 (H, W, 3), converted exactly (``media.colour``) for 8-bit
    planar Y'CbCr and by swscale for anything else (RGB, 10-bit)."""
    fmt = frame.format.name
    if fmt not in SUBSAMPLING:
        return frame.to_ndarray(format="rgb24")
    planes = [
        np.frombuffer(p, np.uint8).reshape(p.height, p.line_size)[:, : p.width]
        for p in frame.planes
    ]
    return yuv_to_rgb(planes, spec_of(frame.colorspace, frame.color_range, fmt, frame.height))


def _resampled(
    frames: Iterator[tuple[np.ndarray, float]], fps: float
) -> Iterator[tuple[np.ndarray, float]]:
    """Resample a stream of timed frames to a constant rate by nearest-timestamp selection.

    Output frame k stands at ``t0 + k / fps``; it takes the decoded frame whose time is nearest
    (the earlier one on a tie). The last frame is held for one mean source interval.
    """
    prev: tuple[np.ndarray, float] | None = None
    t0 = None
    k = 0
    intervals: list[float] = []
    for img, t in frames:
        if prev is None:
            prev, t0 = (img, t), t
            continue
        intervals.append(t - prev[1])
        mid = (prev[1] + t) / 2
        while t0 + k / fps <= mid + 1e-9:
            yield prev[0], t0 + k / fps
            k += 1
        prev = (img, t)
    if prev is None:
        return
    hold = float(np.mean(intervals)) if intervals else 1.0 / fps
    end = prev[1] + hold
    while t0 + k / fps < end - 1e-6:
        yield prev[0], t0 + k / fps
        k += 1


def iter_frames(
    path: str | os.PathLike,
    chunk_size: int = 32,
    fps: float | None = None,
    max_frames: int | None = None,
) -> Iterator[FrameChunk]:
    """Stream a video as chunks of at most ``chunk_size`` RGB frames.

    Memory stays bounded by one chunk whatever the length of the video. With ``fps`` the
    frames are resampled to that constant rate (for variable-frame-rate input).
    """
    p = existing_file(path)
    frames = _decoded(p)
    if fps is not None:
        if fps <= 0:
            raise InputError(f"--fps must be positive, got {fps}")
        frames = _resampled(frames, fps)
    buf: list[np.ndarray] = []
    times: list[float] = []
    start = 0
    for img, t in frames:
        if max_frames is not None and start + len(buf) >= max_frames:
            break
        buf.append(img)
        times.append(t)
        if len(buf) == chunk_size:
            yield FrameChunk(np.stack(buf), np.asarray(times), start)
            start += len(buf)
            buf, times = [], []
    if buf:
        yield FrameChunk(np.stack(buf), np.asarray(times), start)


def read_frames(
    path: str | os.PathLike, fps: float | None = None, max_frames: int | None = None
) -> tuple[np.ndarray, float]:
    """Read a whole video into memory: (frames (T, H, W, 3) uint8, frames per second)."""
    chunks = [c.frames for c in iter_frames(path, chunk_size=64, fps=fps, max_frames=max_frames)]
    if not chunks:
        raise InputError(f"no frames could be decoded from {path}")
    return np.concatenate(chunks), float(fps) if fps else probe(path).fps


# Counts from a duration (every container but MP4 and MOV) may round a frame either way.
_COUNT_SLACK = 1


def warn_if_short(info: VideoInfo, decoded: int, done: str, limit: int | None = None) -> None:
    """Say in one line on stderr when fewer than the frames ``info``'s header states (up to
    ``limit``, e.g. ``--max-frames``) decoded: a file cut short. ``done`` is what was done
    with those that did ("restored")."""
    stated = info.frame_count if limit is None else min(info.frame_count, limit)
    if decoded < stated - _COUNT_SLACK:
        print(
            f"avrestore: warning: {info.path} ends after {decoded} of the {info.frame_count} "
            f"frames its header states (truncated?); {done} those {decoded}",
            file=sys.stderr,
        )


def odd_size_note(width: int, height: int) -> str | None:
    """What ``VideoWriter(exact_size=True)`` says it does to a ``width`` x ``height`` video,
    if anything: an odd side is kept by encoding 4:4:4."""
    if width % 2 == 0 and height % 2 == 0:
        return None
    return (
        f"{width}x{height} has an odd side: kept by writing H.264 4:4:4, which some browsers "
        "and phones cannot play"
    )


def _even(frames: np.ndarray) -> np.ndarray:
    """Pad (edge-replicate) the last row/column so both sides are even, as yuv420p needs."""
    h, w = frames.shape[-3:-1]
    ph, pw = h % 2, w % 2
    if not (ph or pw):
        return frames
    pad = [(0, 0)] * (frames.ndim - 3) + [(0, ph), (0, pw), (0, 0)]
    return np.pad(frames, pad, mode="edge")


class VideoWriter:
    """Write RGB frames to H.264 (libx264, yuv420p unless ``pix_fmt`` says otherwise, e.g.
    ``yuv444p`` for near-lossless crops) with an optional AAC track.

    Frames are converted to Y'CbCr by ``colour`` (``media.colour``: BT.601 limited range unless
    told otherwise, e.g. the input's own spec when restoring), and the stream states it.

    yuv420p cannot code an odd side, nor can H.264 crop one pixel off it: odd sizes are padded
    by one replicated row/column to an even size, or, with ``exact_size``, written as yuv444p
    (High 4:4:4, which some players cannot play) at their own size.
    The audio is cut or zero-padded to the video's duration (frames / fps) and interleaved
    as frames arrive, so audio and video end together. Use as a context manager; the file
    is written to ``path`` directly (wrap it in ``atomic_path`` for all-or-nothing output).
    Leaving the context on an exception closes the file unfinished, without flushing.
    """

    def __init__(
        self,
        path: str | os.PathLike,
        fps: float,
        crf: float = 18,
        preset: str = "medium",
        audio: Audio | None = None,
        pix_fmt: str = "yuv420p",
        colour: ColourSpec = DEFAULT_SPEC,
        exact_size: bool = False,
    ) -> None:
        if pix_fmt not in WRITABLE:
            raise ValueError(f"pix_fmt must be one of {', '.join(WRITABLE)}, got {pix_fmt}")
        self.path = Path(path)
        self.pix_fmt, self.colour, self.exact_size = pix_fmt, colour, exact_size
        self.rate = Fraction(fps).limit_denominator(1001)
        self.crf, self.preset = crf, preset
        self.audio = audio
        self.frames_written = 0
        self._samples_written = 0
        self._container = av.open(str(self.path), mode="w", format=container_format(self.path))
        self._v: av.video.VideoStream | None = None
        self._a = None
        if audio is not None:
            layout = "mono" if audio.channels == 1 else "stereo"
            self._a = self._container.add_stream("aac", rate=audio.rate, layout=layout)
            self._a.bit_rate = 128_000 if audio.channels == 1 else 192_000

    def __enter__(self) -> VideoWriter:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, *exc: object) -> None:
        if exc_type is None:
            self.close()
        else:
            self._discard()

    def _discard(self) -> None:
        """Close without flushing: the file is thrown away, and flushing would first encode
        the dozens of frames libx264 holds (seconds, after Ctrl-C)."""
        if self._container is None:
            return
        container, self._container = self._container, None
        # Closing writes the trailer, which fails on a full disk: the error to report is the
        # one that stopped the writing.
        with contextlib.suppress(OSError, av.error.FFmpegError):
            container.close()

    def _open_video(self, h: int, w: int) -> av.video.VideoStream:
        v = self._container.add_stream("libx264", rate=self.rate)
        v.width, v.height, v.pix_fmt = w, h, self.pix_fmt
        v.options = {"crf": str(self.crf), "preset": self.preset}
        v.codec_context.colorspace = self.colour.av_colorspace
        v.codec_context.color_range = self.colour.av_color_range
        return v

    def _frame(self, img: np.ndarray) -> av.VideoFrame:
        """One RGB image as a Y'CbCr frame of the stream's format, stating its colour spec."""
        y, cb, cr = rgb_to_yuv(img, self.colour, SUBSAMPLING[self.pix_fmt])
        if self.pix_fmt.endswith("444p"):
            frame = av.VideoFrame.from_ndarray(np.stack((y, cb, cr)), format=self.pix_fmt)
        else:  # PyAV takes the chroma planes' bytes appended below the luma plane
            packed = np.concatenate((y.ravel(), cb.ravel(), cr.ravel()))
            frame = av.VideoFrame.from_ndarray(packed.reshape(-1, y.shape[1]), format=self.pix_fmt)
        frame.colorspace = self.colour.av_colorspace
        frame.color_range = self.colour.av_color_range
        return frame

    def write(self, frames: np.ndarray) -> None:
        """Append one frame (H, W, 3) or several (n, H, W, 3), RGB uint8."""
        frames = np.asarray(frames)
        if frames.ndim == 3:
            frames = frames[None]
        if frames.dtype != np.uint8 or frames.ndim != 4 or frames.shape[-1] != 3:
            raise ValueError(
                f"frames must be uint8 (n, H, W, 3), got {frames.dtype} {frames.shape}"
            )
        if self._v is None and self.exact_size and (frames.shape[1] % 2 or frames.shape[2] % 2):
            self.pix_fmt = "yuv444p"  # the first frames decide: a stream keeps one format
        if self.pix_fmt == "yuv420p":
            frames = _even(frames)
        if self._v is None:
            self._v = self._open_video(*frames.shape[1:3])
        for img in frames:
            frame = self._frame(img)
            frame.pts = self.frames_written
            frame.time_base = 1 / self.rate
            self._container.mux(self._v.encode(frame))
            self.frames_written += 1
        self._write_audio_until(self.frames_written / self.rate)

    def _write_audio_until(self, seconds: Fraction) -> None:
        if self._a is None or self.audio is None:
            return
        end = int(seconds * self.audio.rate)
        size = self._a.codec_context.frame_size or 1024
        # Whole encoder frames only, until close() writes the tail.
        while self._samples_written + size <= end:
            self._encode_audio(self._samples_written, self._samples_written + size)

    def _encode_audio(self, a: int, b: int) -> None:
        assert self.audio is not None and self._a is not None
        chunk = self.audio.samples[:, a:b]
        if chunk.shape[1] < b - a:  # past the end of the source: silence
            chunk = np.pad(chunk, ((0, 0), (0, b - a - chunk.shape[1])))
        layout = "mono" if self.audio.channels == 1 else "stereo"
        frame = av.AudioFrame.from_ndarray(
            np.ascontiguousarray(chunk, dtype=np.float32), format="fltp", layout=layout
        )
        frame.sample_rate = self.audio.rate
        frame.pts = a
        frame.time_base = Fraction(1, self.audio.rate)
        self._container.mux(self._a.encode(frame))
        self._samples_written = b

    def close(self) -> None:
        """Flush the encoders, finish the audio at the video's duration, close the file."""
        if self._container is None:
            return
        try:
            if self._v is not None:
                self._container.mux(self._v.encode(None))
            if self._a is not None and self.audio is not None:
                end = int(self.frames_written / self.rate * self.audio.rate)
                size = self._a.codec_context.frame_size or 1024
                while self._samples_written < end:
                    self._encode_audio(
                        self._samples_written, min(self._samples_written + size, end)
                    )
                self._container.mux(self._a.encode(None))
        finally:
            self._container.close()
            self._container = None


_CONTAINERS = {".mp4": "mp4", ".m4v": "mp4", ".mov": "mov", ".mkv": "matroska"}


def container_format(path: str | os.PathLike) -> str:
    """The container ``VideoWriter`` writes for ``path``'s suffix; InputError for others."""
    suffix = Path(path).suffix.lower()
    if suffix not in _CONTAINERS:
        known = ", ".join(sorted(_CONTAINERS))
        raise InputError(f"cannot write video to {path}: use one of the suffixes {known}")
    return _CONTAINERS[suffix]
