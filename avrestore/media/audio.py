"""Decode a file's audio track to float32 samples, resampled and down-mixed on request."""

from __future__ import annotations

import os
from dataclasses import dataclass

import av
import numpy as np

from avrestore.errors import InputError
from avrestore.media.files import existing_file


@dataclass(frozen=True)
class Audio:
    """Decoded audio: ``samples`` float32 (channels, n) in [-1, 1] at ``rate`` Hz."""

    samples: np.ndarray
    rate: int

    @property
    def channels(self) -> int:
        """Number of channels."""
        return int(self.samples.shape[0])

    @property
    def duration(self) -> float:
        """Length in seconds."""
        return self.samples.shape[1] / self.rate

    @property
    def mono(self) -> np.ndarray:
        """The channels averaged into one float32 signal (n,)."""
        return self.samples.mean(axis=0).astype(np.float32)


def read_audio(
    path: str | os.PathLike, rate: int | None = 16000, mono: bool = True
) -> Audio | None:
    """Decode the first audio stream; ``None`` if the file has none.

    ``rate=None`` keeps the native sample rate; ``mono=False`` keeps up to two channels
    (more are down-mixed to stereo), as the AAC writer expects.
    """
    p = existing_file(path)
    try:
        container = av.open(str(p))
    except (av.error.FFmpegError, UnicodeDecodeError, ValueError) as e:
        raise InputError(f"not a readable media file: {p} ({e.__class__.__name__})") from None
    with container:
        if not container.streams.audio:
            return None
        stream = container.streams.audio[0]
        native = stream.codec_context.sample_rate
        channels = stream.codec_context.channels or 1
        layout = "mono" if mono or channels == 1 else "stereo"
        out_rate = rate or native
        resampler = av.AudioResampler(format="fltp", layout=layout, rate=out_rate)
        parts: list[np.ndarray] = []
        try:
            for frame in container.decode(stream):
                frame.pts = None  # let the resampler count samples; some streams have gaps
                parts.extend(f.to_ndarray() for f in resampler.resample(frame))
            parts.extend(f.to_ndarray() for f in resampler.resample(None))
        except av.error.FFmpegError as e:
            raise InputError(f"cannot decode audio of {p}: {e}") from None
        stated = _stated_length(container, stream, out_rate)
    n_ch = 1 if layout == "mono" else 2
    samples = np.concatenate(parts, axis=1) if parts else np.zeros((n_ch, 0), np.float32)
    return Audio(samples[:, :stated].astype(np.float32, copy=False), out_rate)


def _stated_length(
    container: av.container.InputContainer, stream: av.audio.AudioStream, rate: int
) -> int | None:
    """The stream's true length in samples at ``rate`` where the container states it exactly.

    AAC codes whole 1024-sample frames; MP4/MOV record the true length (our own writer's
    included), but the decoder still returns the padding of the last frame, up to 64 ms at
    16 kHz. Other containers' durations are estimates (MPEG-PS), so nothing is cut there.
    """
    if "mp4" not in container.format.name.split(",") or not stream.duration:
        return None
    return round(stream.duration * stream.time_base * rate)
