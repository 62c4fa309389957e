"""Media I/O: VideoWriter round trips, audio/video sync, resampling, odd sizes, files cut
short, display rotation, PSNR, PNGs, atomic writes and their temporary names."""

from __future__ import annotations

import errno
import math
import os
import subprocess
import sys
from pathlib import Path

import av
import cv2
import numpy as np
import pytest

from avrestore.errors import InputError
from avrestore.media.audio import read_audio
from avrestore.media.files import atomic_dir, atomic_path, remove_stale
from avrestore.media.images import side_by_side, write_png
from avrestore.media.video import VideoWriter, frame_to_rgb, iter_frames, probe, read_frames
from avrestore.quality import psnr, video_psnr


def write_stored(path: Path, frames: np.ndarray, rotation: int = 0, hflip: bool = False) -> Path:
    """Write frames (T, H, W, 3) as they are stored, with a display matrix turning them by
    ``rotation`` degrees counter-clockwise (then mirroring, ``hflip``) as a phone does, the
    index first (MP4 ``faststart``) so that the file cut short still opens."""
    h, w = frames.shape[1:3]
    options = {"movflags": "faststart"} if path.suffix == ".mp4" else {}
    with av.open(str(path), "w", options=options) as c:
        v = c.add_stream("libx264", rate=25)
        v.width, v.height, v.options = w, h, {"crf": "10"}
        if rotation or hflip:
            v.set_display_rotation(rotation, hflip=hflip)
        for i, img in enumerate(frames):
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(img), format="rgb24")
            frame.pts = i
            c.mux(v.encode(frame))
        c.mux(v.encode(None))
    return path


def cut_short(path: Path, to: Path, fraction: float = 0.4) -> Path:
    """A copy of the file's first ``fraction`` of bytes, as a broken download leaves it."""
    data = path.read_bytes()
    to.write_bytes(data[: int(len(data) * fraction)])
    return to


def noise(frames: int, height: int, width: int) -> np.ndarray:
    """Frames of smooth random blobs: nothing codec-friendly, every frame different."""
    rng = np.random.default_rng(0)
    small = rng.integers(0, 256, (frames, height // 8 + 1, width // 8 + 1, 3), dtype=np.uint8)
    return np.stack([cv2.resize(f, (width, height), interpolation=cv2.INTER_CUBIC) for f in small])


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


def test_exact_size_keeps_an_odd_size_in_444(tmp_path: Path, grid_frames: np.ndarray) -> None:
    frames = np.ascontiguousarray(grid_frames[:5, 100:243, 150:325])  # 143 x 175
    out = tmp_path / "odd.mp4"
    with VideoWriter(out, 25, crf=10, exact_size=True) as writer:
        writer.write(frames)
    info = probe(out)
    assert (info.width, info.height, info.frame_count) == (175, 143, 5)
    with av.open(str(out)) as c:
        assert c.streams.video[0].codec_context.pix_fmt == "yuv444p"
    assert video_psnr(frames, read_frames(out)[0]) > 38


def test_an_even_size_stays_420_with_exact_size(tmp_path: Path, grid_frames: np.ndarray) -> None:
    out = tmp_path / "even.mp4"
    with VideoWriter(out, 25, exact_size=True) as writer:
        writer.write(grid_frames[:2])
    with av.open(str(out)) as c:
        assert c.streams.video[0].codec_context.pix_fmt == "yuv420p"


@pytest.mark.parametrize("suffix", [".mp4", ".mkv"])
def test_a_file_cut_short_decodes_what_it_holds(tmp_path: Path, suffix: str) -> None:
    frames = noise(50, 48, 64)
    whole = write_stored(tmp_path / f"whole{suffix}", frames)
    cut = cut_short(whole, tmp_path / f"cut{suffix}")
    complete, _ = read_frames(whole)
    # Matroska's own count is the video track's duration, not the longer segment's.
    assert probe(whole).frame_count == len(complete) == 50
    assert probe(cut).frame_count == 50
    decoded, _ = read_frames(cut)
    assert 5 <= len(decoded) < 30
    np.testing.assert_array_equal(decoded, complete[: len(decoded)])


@pytest.mark.parametrize(
    ("rotation", "hflip", "upright"),
    [
        (90, False, lambda f: np.rot90(f, 1, axes=(1, 2))),
        (-90, False, lambda f: np.rot90(f, -1, axes=(1, 2))),
        (180, False, lambda f: f[:, ::-1, ::-1]),
        (0, True, lambda f: f[:, :, ::-1]),
        (90, True, lambda f: np.rot90(f, 1, axes=(1, 2))[:, :, ::-1]),
    ],
    ids=["ccw", "cw", "half", "mirror", "ccw-mirror"],
)
def test_a_display_matrix_is_applied(tmp_path: Path, rotation: int, hflip: bool, upright) -> None:
    path = write_stored(tmp_path / "turned.mp4", noise(3, 48, 64), rotation, hflip)
    with av.open(str(path)) as c:  # the pixels as stored, the display matrix ignored
        stored = np.stack([frame_to_rgb(f) for f in c.decode(video=0)])
    expected = upright(stored)
    decoded, _ = read_frames(path)
    np.testing.assert_array_equal(decoded, expected)
    info = probe(path)
    assert (info.height, info.width) == expected.shape[1:3]


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


def test_temporary_names_carry_the_process_and_stale_ones_are_removed(tmp_path: Path) -> None:
    (tmp_path / "first").mkdir()
    with atomic_path(tmp_path / "first" / "probe.mp4") as tmp:
        assert tmp.name.startswith(".probe.avrestore-") and tmp.name.endswith(".part.mp4")
        assert f"-{os.getpid()}-" in tmp.name
        host = tmp.name.split(".avrestore-")[1].split("-")[0]
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True).stdout.strip()  # fmt: skip
    stale = tmp_path / f".out.avrestore-{host}-{gone}-abcd1234.part.mp4"
    stale_dir = tmp_path / f".clip.avrestore-{host}-{gone}-abcd1234.part"
    live = tmp_path / f".out.avrestore-{host}-{os.getpid()}-abcd1234.part.mp4"
    other_host = tmp_path / f".out.avrestore-{host}x-{gone}-abcd1234.part.mp4"
    for path in (stale, live, other_host):
        path.write_bytes(b"half")
    stale_dir.mkdir()
    (stale_dir / "frames.npy").write_bytes(b"half")
    with atomic_dir(tmp_path / "clip"):  # sweeps the folder first, as atomic_path does
        pass
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        ["first", "clip", live.name, other_host.name]
    )
    stale.write_bytes(b"half")
    remove_stale(tmp_path)
    assert stale.exists()  # once per folder and process: a sweep lists it all


@pytest.mark.parametrize("atomic", [atomic_path, atomic_dir])
def test_a_full_disk_names_the_output_and_keeps_nothing(tmp_path: Path, atomic) -> None:
    target = tmp_path / "out.mp4"
    with pytest.raises(OSError) as raised, atomic(target) as tmp:
        raise av.error.OSError(errno.ENOSPC, "No space left on device", str(tmp))
    assert raised.value.errno == errno.ENOSPC and raised.value.filename is None
    assert raised.value.strerror == (
        f"no space left on the device writing {target}; nothing was kept"
    )
    assert not any(tmp_path.iterdir())


@pytest.mark.parametrize("atomic, make", [(atomic_path, "open"), (atomic_dir, "mkdir")])
def test_a_signal_the_instant_the_temporary_appears_keeps_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, atomic, make: str
) -> None:
    # The race CI once lost: SIGTERM landed between mkstemp making the file and the try that
    # removes it. Here the "signal" is raised right after the real call has made it.
    real = getattr(os, make)

    def make_then_interrupt(*args, **kwargs):
        real(*args, **kwargs)
        raise KeyboardInterrupt

    monkeypatch.setattr(os, make, make_then_interrupt)
    with pytest.raises(KeyboardInterrupt), atomic(tmp_path / "out.mp4"):
        pytest.fail("the body must not run")
    assert not any(tmp_path.iterdir())
