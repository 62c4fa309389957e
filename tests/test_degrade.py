"""Degradations: compression, blur and low resolution lower PSNR in order of strength; chains
are deterministic under a seed; levels are drawn within the papers' ranges."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from avrestore.degrade import (
    PAPER_RANGES,
    Degradation,
    DegradationRanges,
    blur,
    compress,
    downscale,
    downscaled_size,
    gaussian_sigma,
    upscale,
)
from avrestore.errors import InputError
from avrestore.media.video import VideoWriter, read_frames
from avrestore.quality import video_psnr


def assert_same_encode(reference: np.ndarray, a: np.ndarray, b: np.ndarray) -> None:
    """Two libx264 encodes of ``reference`` at one setting: equal fidelity, to 0.2 dB.

    Not bit-exact: libx264 varies run to run on AVX-512 CPUs (see ``compress``), by up to
    0.04 dB of PSNR; one CRF step moves it by about 0.4 dB on the GRID clip.
    """
    assert video_psnr(reference, a) == pytest.approx(video_psnr(reference, b), abs=0.2)


@pytest.fixture(scope="module")
def clip(grid_clip: Path) -> np.ndarray:
    """The first second of the GRID clip: 25 frames, 288 x 360."""
    return read_frames(grid_clip, max_frames=25)[0]


def test_higher_crf_gives_a_smaller_file_and_lower_psnr(clip: np.ndarray, tmp_path: Path) -> None:
    sizes, scores = [], []
    for crf in (35, 40, 45):
        path = tmp_path / f"crf{crf}.mp4"
        with VideoWriter(path, 25, crf=crf) as writer:
            writer.write(clip)
        compressed = compress(clip, crf)
        assert compressed.shape == clip.shape
        assert_same_encode(clip, compressed, read_frames(path)[0])  # the same encoder
        sizes.append(path.stat().st_size)
        scores.append(video_psnr(clip, compressed))
    assert sizes[0] > sizes[1] > sizes[2]
    assert scores[0] > scores[1] > scores[2] > 25


def test_compress_crops_odd_sizes_back(clip: np.ndarray) -> None:
    odd = np.ascontiguousarray(clip[:4, 100:133, 150:197])
    out = compress(odd, 18)
    assert out.shape == odd.shape
    assert video_psnr(odd, out) > 35


def test_blur_sigma_follows_opencvs_rule(clip: np.ndarray) -> None:
    assert [gaussian_sigma(k) for k in (15, 21, 25)] == pytest.approx([2.6, 3.5, 4.1])
    frame = clip[:1]
    np.testing.assert_array_equal(blur(frame, 21)[0], cv2.GaussianBlur(frame[0], (21, 21), 0))


def test_stronger_blur_and_downscale_lower_psnr(clip: np.ndarray) -> None:
    blurred = [video_psnr(clip, Degradation(blur=k)(clip)) for k in (15, 21, 25)]
    lowres = [video_psnr(clip, Degradation(downscale=s)(clip)) for s in (2, 4, 8)]
    assert blurred[0] > blurred[1] > blurred[2] > 20
    assert lowres[0] > lowres[1] > lowres[2] > 20


def test_downscale_averages_blocks_and_upscale_restores_the_size(clip: np.ndarray) -> None:
    small = downscale(clip[:2], 4)
    assert small.shape == (2, 72, 90, 3)
    assert downscaled_size(144, 176, 8) == (18, 22)
    assert downscaled_size(33, 47, 8) == (4, 6)
    block_means = clip[0].reshape(72, 4, 90, 4, 3).mean(axis=(1, 3))  # area averaging
    np.testing.assert_allclose(small[0], block_means, atol=0.5 + 1e-6)
    assert upscale(small, (288, 360)).shape == clip[:2].shape


def test_chain_runs_blur_then_downscale_then_compression(clip: np.ndarray) -> None:
    frames = clip[:8]
    shrunk = downscale(blur(frames, 15), 4)
    small = Degradation(blur=15, downscale=4, crf=40)(frames, keep_small=True)
    assert small.shape == shrunk.shape == (8, 72, 90, 3)
    assert_same_encode(shrunk, small, compress(shrunk, 40))
    upscaled = Degradation(blur=15, downscale=4)(frames)
    np.testing.assert_array_equal(upscaled, upscale(shrunk, (288, 360)))


def test_chain_is_deterministic_under_a_seed(clip: np.ndarray) -> None:
    ranges = DegradationRanges(blur=(15, 25), downscale=(2, 8), crf=(35, 45))
    first = ranges.sample(np.random.default_rng(7))
    again = ranges.sample(np.random.default_rng(7))
    assert first == again
    spatial = Degradation(blur=first.blur, downscale=first.downscale)
    np.testing.assert_array_equal(spatial(clip[:4]), spatial(clip[:4]))
    assert_same_encode(clip[:4], first(clip[:4]), again(clip[:4]))
    others = {ranges.sample(np.random.default_rng(seed)) for seed in range(8)}
    assert len(others) > 1


def test_levels_are_drawn_within_the_papers_ranges() -> None:
    rng = np.random.default_rng(0)
    blurs = {PAPER_RANGES["blur"].sample(rng).blur for _ in range(200)}
    scales = {PAPER_RANGES["lowres"].sample(rng).downscale for _ in range(200)}
    assert blurs == {15, 17, 19, 21, 23, 25}
    assert scales == set(range(2, 9))
    assert PAPER_RANGES["compression"].sample(rng) == Degradation(crf=45)


@pytest.mark.parametrize(
    ("levels", "message"),
    [
        ({"blur": 20}, "odd"),
        ({"blur": 1}, "odd"),
        ({"downscale": 1}, "at least 2"),
        ({"crf": 52}, "0..51"),
    ],
)
def test_invalid_levels_are_input_errors(levels: dict[str, int], message: str) -> None:
    with pytest.raises(InputError, match=message):
        Degradation(**levels)


def test_a_backwards_range_is_an_input_error() -> None:
    with pytest.raises(InputError, match="backwards"):
        DegradationRanges(blur=(25, 15)).sample(np.random.default_rng(0))
