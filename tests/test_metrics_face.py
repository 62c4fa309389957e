"""Face metrics: the mouth box, mouth PSNR, LMD and identity similarity on real frames."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from avrestore.faces.identity import FaceEmbedder
from avrestore.faces.landmarks import LandmarkPredictor
from avrestore.media.video import read_frames
from avrestore.metrics.identity import identity_similarity
from avrestore.metrics.mouth import lmd, mouth_box, mouth_psnr, refit_landmarks


@pytest.fixture(scope="module")
def predictor() -> LandmarkPredictor:
    return LandmarkPredictor()


@pytest.fixture(scope="module")
def obama(talking_heads: Path, predictor: LandmarkPredictor) -> tuple[np.ndarray, np.ndarray]:
    """Two frames of a real 256×256 talking head and their landmarks."""
    frames, _ = read_frames(talking_heads / "styletalk_Obama_clip1.mp4", max_frames=2)
    return frames, np.stack([predictor.predict(f) for f in frames])


def _mouth_at(x0: float, y0: float, x1: float, y1: float) -> np.ndarray:
    pts = np.zeros((68, 2), np.float32)
    pts[48:68] = np.linspace((x0, y0), (x1, y1), 20)
    pts[:48] = (5, 5)  # elsewhere on the face: must not matter
    return pts


def test_mouth_box_adds_ten_percent_of_width() -> None:
    # Mouth 40 px wide: 4 px margin on every side, ends exclusive.
    assert mouth_box(_mouth_at(30, 50, 70, 60), 100, 100) == (26, 46, 75, 65)
    # Clipped to the image.
    assert mouth_box(_mouth_at(-10, 90, 30, 110), 100, 100) == (0, 86, 35, 100)


def test_mouth_psnr_sees_only_the_mouth(obama) -> None:
    frames, marks = obama
    assert mouth_psnr(frames, frames, marks) == math.inf
    outside = frames.copy()
    outside[:, :20] = 0  # the top rows: far from the mouth
    assert mouth_psnr(outside, frames, marks) == math.inf
    inside = frames.copy()
    for img, pts in zip(inside, marks, strict=True):
        x0, y0, x1, y1 = mouth_box(pts, *img.shape[:2])
        img[y0:y1, x0:x1] = np.clip(img[y0:y1, x0:x1].astype(int) + 10, 0, 255)
    assert 20 < mouth_psnr(inside, frames, marks) < 10 * math.log10(255**2 / 81)


def test_lmd_zero_for_identical_and_positive_for_a_moved_mouth(obama, predictor) -> None:
    frames, marks = obama
    hq = refit_landmarks(predictor, frames, marks)
    assert lmd(refit_landmarks(predictor, frames, marks), hq) == 0.0
    moved = frames.copy()
    for img, pts in zip(moved, marks, strict=True):
        x0, y0, x1, y1 = mouth_box(pts, *img.shape[:2])
        img[y0 + 6 : y1 + 6, x0:x1] = img[y0:y1, x0:x1].copy()  # the mouth drawn 6 px lower
    assert lmd(refit_landmarks(predictor, moved, marks), hq) > 1.0

    shifted = hq.copy()
    shifted[:, 48:68] += (3.0, 4.0)
    assert lmd(shifted, hq) == pytest.approx(5.0)


def test_identity_same_face_one_other_person_lower(talking_heads: Path, obama, predictor):
    frames, marks = obama
    embedder = FaceEmbedder(predictor)
    same = identity_similarity(embedder, frames[:1], frames[:1], marks[:1], marks[:1])
    assert same == pytest.approx(1.0, abs=1e-6)
    other, _ = read_frames(talking_heads / "styletalk_KristiNoem.mp4", max_frames=1)
    other_marks = predictor.predict(other[0])[None]
    different = identity_similarity(embedder, frames[:1], other, marks[:1], other_marks)
    obama2, _ = read_frames(talking_heads / "styletalk_Obama_clip2.mp4", max_frames=1)
    same_person = identity_similarity(
        embedder, frames[:1], obama2, marks[:1], predictor.predict(obama2[0])[None]
    )
    assert different < same_person < same
