"""Media I/O: VideoWriter round trips, audio/video sync, resampling, odd sizes, PSNR, PNGs."""

from __future__ import annotations

import math
import os
from pathlib import Path

import cv2
import numpy as np
import pytest

from avrestore.errors import InputError
from avrestore.media.audio import read_audio
from avrestore.media.files import atomic_path
from avrestore.media.images import side_by_side, write_png
from avrestore.media.video import VideoWriter, iter_frames, probe, read_frames
from avrestore.quality import psnr, video_psnr


@pytest.fixture(scope="module")
def grid_frames(grid_clip: Path) -> np.ndarray:
    return read_frames(grid_clip)[0]


def test_probe_counts_the_grid_clips_frames(grid_clip: Path, grid_frames: np.ndarray) -> None:
    info = probe(grid_clip)
    assert (info.width, info.height, info.fps) == (360, 288, 25.0)
    assert info.frame_count == len(grid_frames) == 75


def test_writer_round_trip_keeps_frames_fps_and_audio(
    tmp_path: Path, grid_clip: Path, grid_frames: np.ndarray
) -> None:
    audio = read_audio(grid_clip, rate=None, mono=False)
    out = tmp_path / "rt.mp4"
    with VideoWriter(out, 25, crf=18, audio=audio) as writer:
        for i in range(0, len(grid_frames), 32):
            writer.write(grid_frames[i : i + 32])
    info = probe(out)
    assert (info.fps, info.frame_count, info.audio_channels) == (25.0, 75, 2)
    frames, fps = read_frames(out)
    assert frames.shape == grid_frames.shape and fps == 25.0
    assert video_psnr(grid_frames, frames) > 38
    written = read_audio(out, rate=None, mono=False)
    assert written.rate == 44100
    assert abs(written.duration - len(frames) / fps) < 1 / fps


def test_tiny_video_audio_lasts_as_long_as_its_frames(tiny_video: Path) -> None:
    frames, fps = read_frames(tiny_video)
    audio = read_audio(tiny_video, rate=16000)
    assert len(frames) == 50 and fps == 25.0
    assert abs(audio.duration - len(frames) / fps) < 1 / fps


@pytest.mark.parametrize("fps", [10.0, 12.5, 50.0])
def test_resampling_gives_the_expected_count(grid_clip: Path, fps: float) -> None:
    chunks = list(iter_frames(grid_clip, chunk_size=16, fps=fps))
    times = np.concatenate([c.times for c in chunks])
    assert len(times) == math.ceil(3.0 * fps)
    np.testing.assert_allclose(np.diff(times), 1 / fps)
    assert [c.start for c in chunks] == list(range(0, len(times), 16))


def test_resampling_picks_the_nearest_frames(grid_clip: Path, grid_frames: np.ndarray) -> None:
    doubled, _ = read_frames(grid_clip, fps=50)
    halved, _ = read_frames(grid_clip, fps=12.5)
    np.testing.assert_array_equal(doubled[0::2], grid_frames)
    np.testing.assert_array_equal(doubled[1::2], grid_frames)
    np.testing.assert_array_equal(halved, grid_frames[0::2])


def test_odd_sizes_are_padded_to_even_with_content_kept(
    tmp_path: Path, grid_frames: np.ndarray
) -> None:
    frames = np.ascontiguousarray(grid_frames[:5, 100:133, 150:197])  # 33 x 47 of the face
    out = tmp_path / "odd.mp4"
    with VideoWriter(out, 25, crf=10) as writer:
        writer.write(frames)
    decoded, _ = read_frames(out)
    assert decoded.shape == (5, 34, 48, 3)
    assert video_psnr(frames, decoded[:, :33, :47]) > 38


def test_read_audio_is_none_without_an_audio_track(silent_clip: Path) -> None:
    assert read_audio(silent_clip) is None
    assert not probe(silent_clip).has_audio


def test_psnr_values() -> None:
    a = np.zeros((2, 4, 4, 3), np.uint8)
    b = a + 1  # MSE 1 on a 255 scale
    assert psnr(a, a) == math.inf
    assert psnr(a, b) == pytest.approx(10 * math.log10(255**2))
    assert psnr(a / 255.0, b / 255.0) == pytest.approx(psnr(a, b))
    c = b.copy()
    c[1] = 2  # frame 1 has MSE 4: the video PSNR is the mean of per-frame values
    expected = (10 * math.log10(255**2) + 10 * math.log10(255**2 / 4)) / 2
    assert video_psnr(a, c) == pytest.approx(expected)
    with pytest.raises(ValueError):
        psnr(a, b[..., :2])


def test_side_by_side_captions_each_tile(tmp_path: Path) -> None:
    tiles = [np.full((40, 60, 3), v, np.uint8) for v in (50, 200)]
    grid = side_by_side(tiles, [["original"], ["blurred", "PSNR 27.50 dB"]])
    assert grid.shape[0] > 40 and grid.shape[1] > 120
    np.testing.assert_array_equal(grid[:40, :60], tiles[0])
    np.testing.assert_array_equal(grid[:40, -60:], tiles[1])
    captions = grid[40:]
    assert (captions[:, :60] < 128).any() and (captions[:, -60:] < 128).any()  # ink in both
    path = write_png(tmp_path / "grid.png", grid)
    np.testing.assert_array_equal(cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB), grid)
    assert os.listdir(tmp_path) == ["grid.png"]


def test_write_png_rejects_other_suffixes(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"\.png"):
        write_png(tmp_path / "grid.jpg", np.zeros((4, 4, 3), np.uint8))
    assert not any(tmp_path.iterdir())


def test_atomic_path_keeps_nothing_on_failure_and_normal_modes_on_success(
    tmp_path: Path,
) -> None:
    target = tmp_path / "out.txt"
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_text("half")
        raise RuntimeError
    assert not any(tmp_path.iterdir())
    with atomic_path(target) as tmp:
        tmp.write_text("whole")
    umask = os.umask(0)
    os.umask(umask)
    assert target.read_text() == "whole"
    assert target.stat().st_mode & 0o777 == 0o666 & ~umask
