"""score_clip end to end on a few real frames: every key, identical clips at the ideal values,
a degraded clip worse on each metric, and None for metrics without weights or audio."""

from __future__ import annotations

import math
from pathlib import Path

import cv2
import numpy as np
import pytest

from avrestore.errors import InputError
from avrestore.media.audio import read_audio
from avrestore.media.video import read_frames
from avrestore.metrics.clip import METRICS, ClipScorer, MetricResources, score_clip


@pytest.fixture(scope="module")
def clip(grid_clip: Path) -> tuple[np.ndarray, np.ndarray, float]:
    """Four 360×288 GRID frames with their 16 kHz audio."""
    frames, fps = read_frames(grid_clip, max_frames=4)
    return frames, read_audio(grid_clip).mono, fps


@pytest.fixture(scope="module")
def scorer(niqe_params_path: Path) -> ClipScorer:
    return ClipScorer(MetricResources(niqe_params=niqe_params_path))


def _degrade(frames: np.ndarray) -> np.ndarray:
    """Blur and JPEG-like quantisation noise, frame by frame."""
    rng = np.random.default_rng(0)
    out = [cv2.GaussianBlur(f, (0, 0), 1.5) + rng.normal(0, 6, f.shape) for f in frames]
    return np.clip(out, 0, 255).astype(np.uint8)


def test_identical_and_degraded(clip, scorer: ClipScorer) -> None:
    hq, audio, fps = clip
    marks = scorer.hq_landmarks(hq)
    ideal = scorer.score(hq, hq, marks, audio, fps)
    assert set(ideal) == set(METRICS)
    assert ideal["psnr"] == ideal["psnr_y"] == ideal["psnr_mouth"] == math.inf
    assert ideal["ssim"] == ideal["ssim_y"] == ideal["ms_ssim"] == pytest.approx(1.0)
    assert ideal["lmd"] == 0.0 and ideal["identity"] == pytest.approx(1.0, abs=1e-6)
    assert ideal["lpips"] is None and ideal["sync_c"] is None and ideal["sync_d"] is None

    bad = scorer.score(_degrade(hq), hq, marks, audio, fps)
    assert 20 < bad["psnr"] < 40 and 20 < bad["psnr_mouth"] < 40
    assert bad["ssim"] < 0.95 and bad["ms_ssim"] < 0.99
    assert bad["lmd"] > 0 and bad["identity"] < 1.0
    assert bad["warp_error"] > ideal["warp_error"] > 0
    if ideal["niqe"] is not None:
        assert bad["niqe"] > ideal["niqe"]


def test_detects_hq_landmarks_when_not_given(clip) -> None:
    hq, _, fps = clip
    values = score_clip(hq[:2], hq[:2], fps=fps)
    assert values["lmd"] == 0.0 and values["niqe"] is None and values["sync_c"] is None


def test_bad_inputs(clip, scorer: ClipScorer) -> None:
    hq, _, _ = clip
    with pytest.raises(InputError, match="differ in shape"):
        scorer.score(hq[:2], hq[:3])
    with pytest.raises(InputError, match="uint8"):
        scorer.score(hq.astype(np.float32), hq)
    with pytest.raises(InputError, match="landmarks"):
        scorer.score(hq, hq, np.zeros((1, 68, 2)))
    with pytest.raises(InputError, match="every"):
        ClipScorer(every=0)
