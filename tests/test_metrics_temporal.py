"""Warping error: the true frame order of a real clip beats a shuffled one; the visibility
mask of the forward–backward check."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from avrestore.media.video import read_frames
from avrestore.metrics.temporal import visible_mask, warp_error


@pytest.fixture(scope="module")
def frames(talking_heads: Path) -> np.ndarray:
    """Six frames of a moving HDTF head, halved to 256×256 to keep the flow cheap."""
    video, _ = read_frames(talking_heads / "hdtf_RD_Radio2_000.mp4", max_frames=6)
    return np.stack([cv2.resize(f, (256, 256), interpolation=cv2.INTER_AREA) for f in video])


def test_true_order_beats_shuffled(frames: np.ndarray) -> None:
    true = warp_error(frames, frames)
    shuffled = warp_error(frames[[3, 0, 5, 1, 4, 2]], frames)
    assert 0 < true < shuffled / 3


def test_flicker_raises_the_error(frames: np.ndarray) -> None:
    gain = np.array([1.0, 0.9, 1.0, 0.9, 1.0, 0.9])[:, None, None, None]
    flicker = np.clip(frames * gain, 0, 255).astype(np.uint8)
    assert warp_error(flicker, frames) > 2 * warp_error(frames, frames)


def test_visible_mask() -> None:
    zero = np.zeros((20, 30, 2), np.float32)
    assert visible_mask(zero, zero).all()
    right = zero.copy()
    right[..., 0] = 3.0  # everything moves 3 px right; the last 3 columns leave the frame
    mask = visible_mask(right, -right)
    assert mask[:, :27].all() and not mask[:, 27:].any()
    assert not visible_mask(right, right).any()  # backward flow does not undo the forward one


def test_needs_two_equal_videos(frames: np.ndarray) -> None:
    with pytest.raises(ValueError, match="two equal"):
        warp_error(frames[:1], frames[:1])
    with pytest.raises(ValueError, match="two equal"):
        warp_error(frames[:3], frames[:4])
