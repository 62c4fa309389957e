"""Exact RGB <-> Y'CbCr: known values, unbiased lossless round trips, stated colour specs."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np
import pytest

from avrestore.media.colour import ColourSpec, rgb_to_yuv, yuv_to_rgb
from avrestore.media.video import VideoWriter, probe, read_frames


@pytest.mark.parametrize(
    ("spec", "white", "black", "red_cr"),
    [
        (ColourSpec("bt601", False), 235, 16, 240),
        (ColourSpec("bt601", True), 255, 0, 255),
        (ColourSpec("bt709", False), 235, 16, 240),
    ],
)
def test_known_colours_map_to_the_standard_codes(
    spec: ColourSpec, white: int, black: int, red_cr: int
) -> None:
    img = np.array([[[255, 255, 255], [0, 0, 0], [255, 0, 0]]], np.uint8)
    y, cb, cr = rgb_to_yuv(img, spec)
    assert y[0, :2].tolist() == [white, black]
    assert cb[0, :2].tolist() == [128, 128] and cr[0, :2].tolist() == [128, 128]
    assert cr[0, 2] == red_cr  # pure red is the largest Cr
    back = yuv_to_rgb([y, cb, cr], spec).astype(int)
    np.testing.assert_array_equal(back[0, :2], img[0, :2])  # grey is exact
    assert np.abs(back - img).max() <= 1  # 8-bit Y'CbCr cannot hold every RGB code


def test_the_two_matrices_differ_where_they_should() -> None:
    green = np.array([[[0, 255, 0]]], np.uint8)
    y601 = rgb_to_yuv(green, ColourSpec("bt601"))[0][0, 0]
    y709 = rgb_to_yuv(green, ColourSpec("bt709"))[0][0, 0]
    assert (y601, y709) == (145, 173)  # 16 + 219 * Kg: 0.587 and 0.7152


def _swscale_rgb(path: Path) -> np.ndarray:
    with av.open(str(path)) as c:
        return np.stack([f.to_ndarray(format="rgb24") for f in c.decode(video=0)])


@pytest.mark.parametrize("pix_fmt", ["yuv420p", "yuv444p"])
@pytest.mark.parametrize("spec", [ColourSpec(), ColourSpec("bt709", True)], ids=["601", "709f"])
def test_a_lossless_round_trip_has_no_colour_bias(
    grid_clip: Path, tmp_path: Path, pix_fmt: str, spec: ColourSpec
) -> None:
    frames, fps = read_frames(grid_clip, max_frames=8)
    out = tmp_path / "lossless.mp4"
    with VideoWriter(out, fps, crf=0, pix_fmt=pix_fmt, colour=spec) as writer:
        writer.write(frames)
    assert probe(out).colour == spec  # the stream states what was used
    back, _ = read_frames(out)
    diff = back.astype(np.float64) - frames
    assert np.abs(diff.mean((0, 1, 2))).max() < 0.1  # levels, per channel
    assert 10 * np.log10(255**2 / (diff**2).mean()) > 45
    if pix_fmt == "yuv420p" and spec == ColourSpec():
        # The conversion this replaces: swscale's rgb24 shifts every channel by about a level.
        swscale = _swscale_rgb(out).astype(np.float64) - frames
        assert np.abs(swscale.mean((0, 1, 2))).min() > 0.5


def test_odd_sides_upsample_chroma_exactly_twice_then_cut() -> None:
    """A 7x5 frame has 4x3 chroma samples: its colours are those of the 8x6 frame the same
    chroma samples serve, cut to 7x5 (stretching 4 samples over 7 columns would shift them)."""
    rng = np.random.default_rng(0)
    y = rng.integers(16, 236, (6, 8), np.uint8)
    cb, cr = (rng.integers(16, 241, (3, 4), np.uint8) for _ in range(2))
    spec = ColourSpec()
    even = yuv_to_rgb([y, cb, cr], spec)
    odd = yuv_to_rgb([np.ascontiguousarray(y[:5, :7]), cb, cr], spec)
    np.testing.assert_array_equal(odd, even[:5, :7])


def test_the_writer_takes_the_formats_it_can_fill(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="yuv420p, yuv444p"):
        VideoWriter(tmp_path / "x.mp4", 25, pix_fmt="yuv422p")
