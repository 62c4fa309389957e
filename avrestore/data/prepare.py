"""Turn one source clip into a face-centred example: crop video, audio, landmarks, boxes, meta.

Per clip folder (written whole or not at all by the caller):

- ``face.mp4``: the tracked face, ``size`` x ``size``, H.264 yuv444p at ``crf`` (0: lossless
  up to the RGB/YUV rounding, about 52 dB PSNR), at the source's average frame rate;
- ``audio.wav``: 16 kHz mono 16-bit, cut or zero-padded to the video's duration (absent when
  the source has no audio);
- ``landmarks.npy``: (T, 68, 2) float32 dlib landmarks in crop pixels (teacher targets);
- ``boxes.npy``: (T, 4) float32 crop boxes ``x0, y0, x1, y1`` in source-frame pixels;
- ``meta.json``: source, speaker, fps, frame count, size, face-found share, audio, timing.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf

from avrestore.audio.features import AUDIO_RATE
from avrestore.data.layouts import ClipSource
from avrestore.faces.crop import crop_square, face_box_in_crop, square_boxes
from avrestore.faces.detect import FaceDetector
from avrestore.faces.landmarks import LandmarkPredictor
from avrestore.faces.scan import scan_faces
from avrestore.faces.track import fill_missing, smooth_boxes, track_largest
from avrestore.media.audio import read_audio
from avrestore.media.video import VideoWriter, iter_frames, probe

MIN_FRAMES = 2  # one frame gives no temporal context to learn from


@dataclass(frozen=True)
class PrepareOptions:
    """How clips are prepared.

    ``detect_every``: run the detector on every k-th frame and interpolate between (HOG is
    the dominant cost; the box is smoothed over several frames anyway). ``max_missing``: the
    largest share of searched frames where the tracked face may be absent before the clip is
    rejected. ``smooth_sigma``: Gaussian sigma in frames for the crop box.
    """

    size: int = 224
    max_missing: float = 0.2
    require_audio: bool = False
    detect_every: int = 2
    smooth_sigma: float = 3.0
    crf: int = 0
    max_frames: int | None = None
    detector: str = "hog"


class ClipRejected(Exception):
    """The clip cannot be used; the message is the reason recorded in the summary."""


@dataclass(frozen=True)
class FaceTrack:
    """Smoothed square crop boxes (T, 4) and what the search found."""

    crop_boxes: np.ndarray
    face_found_ratio: float
    several_faces_ratio: float


class ClipPreparer:
    """Holds the dlib models (loaded once per process) and prepares clips with them."""

    def __init__(self, options: PrepareOptions) -> None:
        self.options = options
        self.detector = FaceDetector(options.detector)
        self.landmarks = LandmarkPredictor(self.detector)

    def track(self, path: Path, fps: float) -> FaceTrack:
        """Pass 1: detect faces, follow the largest, fill gaps, square and smooth the box."""
        o = self.options
        chunks = iter_frames(path, fps=fps, max_frames=o.max_frames)
        frames = (image for chunk in chunks for image in chunk.frames)
        detections = scan_faces(frames, self.detector, o.detect_every)
        several = sum(d is not None and len(d) > 1 for d in detections)
        if len(detections) < MIN_FRAMES:
            raise ClipRejected(f"too short: {len(detections)} frame(s)")
        boxes = track_largest(detections)
        searched = np.array([d is not None for d in detections])
        found = ~np.isnan(boxes[searched]).any(axis=1)
        if not found.any():
            raise ClipRejected("no face found")
        missing = 1.0 - found.mean()
        if missing > o.max_missing:
            raise ClipRejected(
                f"face missing in {missing:.0%} of searched frames (limit {o.max_missing:.0%})"
            )
        crop_boxes = smooth_boxes(square_boxes(fill_missing(boxes)), o.smooth_sigma)
        return FaceTrack(crop_boxes, float(found.mean()), several / int(searched.sum()))

    def prepare(self, clip: ClipSource, out: Path) -> dict:
        """Write ``clip``'s files into the folder ``out``; return its meta (also written)."""
        start = time.perf_counter()
        o = self.options
        info = probe(clip.path)
        audio = read_audio(clip.path, rate=AUDIO_RATE, mono=True)
        if audio is None and o.require_audio:
            raise ClipRejected("no audio track")
        track = self.track(clip.path, info.fps)
        n = len(track.crop_boxes)
        face_box = face_box_in_crop(o.size, o.size)
        used = np.empty((n, 4), np.float32)
        points = np.empty((n, 68, 2), np.float32)
        t = 0
        with VideoWriter(out / "face.mp4", info.fps, crf=o.crf, pix_fmt="yuv444p") as writer:
            for chunk in iter_frames(clip.path, fps=info.fps, max_frames=n):
                crops = []
                for image in chunk.frames:
                    crop, used[t] = crop_square(image, track.crop_boxes[t], o.size)
                    points[t] = self.landmarks.predict(crop, face_box)
                    crops.append(crop)
                    t += 1
                writer.write(np.stack(crops))
        if t != n:
            raise ClipRejected(f"decoding is not repeatable: {n} frames, then {t}")
        np.save(out / "landmarks.npy", points)
        np.save(out / "boxes.npy", used)
        if audio is not None:
            want = round(n / info.fps * AUDIO_RATE)
            mono = audio.mono[:want]
            sf.write(out / "audio.wav", np.pad(mono, (0, want - len(mono))), AUDIO_RATE, "PCM_16")
        meta = {
            "clip_id": clip.clip_id,
            "source": str(clip.path),
            "speaker": clip.speaker,
            "group": clip.group,
            "speaker_known": clip.speaker_known,
            "fps": info.fps,
            "frames": n,
            "size": o.size,
            "source_size": [info.width, info.height],
            "face_found_ratio": round(track.face_found_ratio, 4),
            "several_faces_ratio": round(track.several_faces_ratio, 4),
            "has_audio": audio is not None,
            "audio_seconds": round(audio.duration, 3) if audio is not None else 0.0,
            "seconds": round(time.perf_counter() - start, 2),
        }
        (out / "meta.json").write_text(json.dumps(meta, indent=1) + "\n")
        return meta
