"""The command line end to end: ``degrade`` on the real GRID clip, ``demo``, and bad input
(one ``avrestore: error:`` line, exit code 2, nothing written); files cut short, turned by a
display matrix or of an odd size; SIGINT, SIGTERM, SIGKILL and a full disk."""

from __future__ import annotations

import errno
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import av
import numpy as np
import pytest
import soundfile as sf
from av.sidedata.sidedata import Type as SideDataType
from conftest import run_cli
from test_media import cut_short, noise, write_stored

from avrestore.cli import main
from avrestore.cli.degrade import parse_level
from avrestore.degrade import Degradation, compress, downscale
from avrestore.errors import InputError
from avrestore.media.audio import read_audio
from avrestore.media.video import VideoWriter, probe, read_frames
from avrestore.quality import video_psnr


def _listing(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in folder.iterdir()}


def test_degrade_compress_writes_the_crf_round_trip_with_audio(
    grid_clip: Path, tmp_path: Path
) -> None:
    out = tmp_path / "crf40.mp4"
    result = run_cli("degrade", grid_clip, out, "--compress", "40")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == str(out)
    assert "CRF 40" in result.stderr
    info = probe(out)
    assert (info.width, info.height, info.fps, info.frame_count) == (360, 288, 25.0, 75)
    assert info.audio_rate == 44100 and info.audio_channels == 2
    assert abs(read_audio(out, rate=None).duration - 3.0) < 1 / 25
    # Compression is the encoding of the output itself, as compress() does it: the same
    # fidelity up to libx264's run-to-run jitter (0.04 dB; a CRF step is about 0.4 dB).
    original, _ = read_frames(grid_clip)
    expected = video_psnr(original, Degradation(crf=40)(original))
    assert video_psnr(original, read_frames(out)[0]) == pytest.approx(expected, abs=0.2)
    assert sorted(os.listdir(tmp_path)) == ["crf40.mp4"]


@pytest.mark.parametrize(
    ("keep_small", "size"), [(False, (360, 288)), (True, (90, 72))], ids=["upscaled", "small"]
)
def test_degrade_downscale_and_compress(
    grid_clip: Path, tmp_path: Path, keep_small: bool, size: tuple[int, int]
) -> None:
    out = tmp_path / "lowres.mp4"
    flags = ["--keep-small"] if keep_small else []
    result = run_cli("degrade", grid_clip, out, "--downscale", "4", "--compress", "35", *flags)
    assert result.returncode == 0, result.stderr
    info = probe(out)
    assert ((info.width, info.height), info.frame_count, info.audio_channels) == (size, 75, 2)
    assert sorted(os.listdir(tmp_path)) == ["lowres.mp4"]  # the two-pass temp file is gone
    # The codec saw the small frames, as in the in-memory chain: compressing after upscaling
    # would score 29.4 dB here instead of 25.9 dB.
    original, _ = read_frames(grid_clip)
    reference = downscale(original, 4) if keep_small else original
    expected = video_psnr(
        reference, Degradation(downscale=4, crf=35)(original, keep_small=keep_small)
    )
    assert video_psnr(reference, read_frames(out)[0]) == pytest.approx(expected, abs=0.2)


def test_level_parsing() -> None:
    assert parse_level("21", "--blur") == (21, 21)
    assert parse_level(" 15-25 ", "--blur") == (15, 25)
    assert parse_level(None, "--blur") is None
    with pytest.raises(InputError, match="--compress"):
        parse_level("forty", "--compress")


@pytest.mark.slow
def test_demo_restores_the_blurred_sample_and_measures_the_face_gain(
    talking_heads: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AVRESTORE_SAMPLES", str(talking_heads))
    out = tmp_path / "demo"
    result = run_cli("demo", "--out", out)
    assert result.returncode == 0, result.stderr
    assert set(os.listdir(out)) == {"degraded.mp4", "restored.mp4", "comparison.png"}
    source = probe(talking_heads / "grid_bbaf2n.mpg")
    for video in ("degraded.mp4", "restored.mp4"):
        info = probe(out / video)
        assert info.has_audio and info.frame_count == source.frame_count
    face = [float(x) for x in re.findall(r"face PSNR\s+([\d.]+) dB", result.stdout)]
    assert len(face) == 2 and face[1] > face[0]  # the shipped deblurring model gains


def test_the_command_line_loads_no_heavy_library_until_a_command_runs() -> None:
    # The entry point loads nothing before its signal handlers are in place (an early Ctrl-C
    # is one line too); the app and every command's options load no heavy library.
    code = (
        "import sys, avrestore.cli\n"
        "print(sorted({'typer', 'numpy'} & set(sys.modules)))\n"
        "import avrestore.cli.app\n"
        "print(sorted({'torch', 'cv2', 'av', 'dlib', 'scipy', 'numpy'} & set(sys.modules)))"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and r.stdout.split() == ["[]", "[]"], r.stdout + r.stderr
    helped = run_cli("degrade", "--help")
    assert helped.returncode == 0 and "--compress" in helped.stdout


def test_demo_refuses_an_unknown_task_or_a_missing_clip(tmp_path: Path) -> None:
    for args, message in (
        (("--task", "denoise"), "--task must be one of car, deblur, sr"),
        (("--task", "car", "--clip", str(tmp_path / "none.mp4")), "none.mp4"),
    ):
        r = run_cli("demo", "--out", tmp_path / "out", *args)
        assert r.returncode == 2 and r.stderr.startswith("avrestore: error:"), r.stderr
        assert message in r.stderr and r.stderr.count("\n") == 1
    assert not (tmp_path / "out").exists()


def _audio_only(folder: Path) -> Path:
    path = folder / "speech.wav"
    sf.write(path, np.zeros(16000, np.float32), 16000)
    return path


def _text_file(folder: Path) -> Path:
    path = folder / "notes.mp4"
    path.write_text("not a video\n")
    return path


@pytest.mark.parametrize(
    ("make_input", "output_name", "message"),
    [
        (lambda d, clip: d / "missing.mp4", "out.mp4", "no such file"),
        (lambda d, clip: _text_file(d), "out.mp4", "not a readable media file"),
        (lambda d, clip: _audio_only(d), "out.mp4", "no video stream"),
        (lambda d, clip: shutil.copy(clip, d / "in.mpg"), "in.mpg", "is the input"),
        (lambda d, clip: shutil.copy(clip, d / "in.mpg"), "no/such/dir/out.mp4", "does not exist"),
        (lambda d, clip: shutil.copy(clip, d / "in.mpg"), "out.avi", "suffixes"),
        # /proc takes no files, even from root, whom os.access would let through.
        (lambda d, clip: shutil.copy(clip, d / "in.mpg"), "/proc/out.mp4", "writ|not exist"),
    ],
    ids=[
        "missing",
        "not-media",
        "audio-only",
        "output-is-input",
        "no-folder",
        "bad-suffix",
        "unwritable-folder",
    ],
)
def test_bad_input_is_one_line_and_writes_nothing(
    grid_clip: Path, tmp_path: Path, make_input, output_name: str, message: str
) -> None:
    src = Path(make_input(tmp_path, grid_clip))
    before = _listing(tmp_path)
    result = run_cli("degrade", src, tmp_path / output_name, "--blur", "21")
    assert result.returncode == 2
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("avrestore: error:"), result.stderr
    assert re.search(message, lines[0])
    assert "Traceback" not in result.stderr + result.stdout
    assert _listing(tmp_path) == before  # input bytes unchanged, no output, no temp files


@pytest.mark.skipif(os.geteuid() == 0, reason="root may write in read-only folders")
def test_unwritable_output_folder_is_one_line(grid_clip: Path, tmp_path: Path) -> None:
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o555)
    result = run_cli("degrade", grid_clip, locked / "out.mp4", "--blur", "21")
    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        f"avrestore: error: output folder is not writable: {locked}"
    ]
    assert not any(locked.iterdir())


# --- files cut short, turned, of an odd size ---------------------------------------------------


def test_degrade_keeps_what_a_file_cut_short_holds_and_says_so(tmp_path: Path) -> None:
    whole = write_stored(tmp_path / "whole.mp4", noise(50, 48, 64))
    cut = cut_short(whole, tmp_path / "in.mp4")
    n = len(read_frames(cut)[0])
    out = tmp_path / "out.mp4"
    r = run_cli("degrade", cut, out, "--blur", "3")
    assert r.returncode == 0, r.stderr
    assert r.stderr.splitlines() == [
        f"avrestore: warning: {cut} ends after {n} of the 50 frames its header states "
        f"(truncated?); degraded those {n}",
        "avrestore: degrade: blur k=3 (sigma 0.80)",
    ]
    assert probe(out).frame_count == n < 30


def test_degrade_writes_a_turned_video_upright(tmp_path: Path) -> None:
    stored = noise(5, 48, 64)
    src = write_stored(tmp_path / "phone.mp4", stored, rotation=90)
    out = tmp_path / "out.mp4"
    r = run_cli("degrade", src, out, "--blur", "3")
    assert r.returncode == 0, r.stderr
    info = probe(out)
    assert (info.width, info.height) == (48, 64)
    with av.open(str(out)) as c:
        frame = next(c.decode(video=0))
        assert (frame.width, frame.height) == (48, 64)  # upright pixels, no display matrix
        assert all(d.type != SideDataType.DISPLAYMATRIX for d in frame.side_data)
    upright = np.rot90(stored, 1, axes=(1, 2))
    assert video_psnr(upright, read_frames(out)[0]) > 25


@pytest.mark.parametrize(
    ("flags", "size", "noted"),
    [
        (["--blur", "3"], (175, 143), True),
        (["--compress", "30"], (175, 143), True),
        (["--downscale", "2", "--compress", "30"], (175, 143), True),
        (["--downscale", "3", "--compress", "30", "--keep-small"], (58, 48), False),
    ],
    ids=["blur", "compress", "downscale-compress", "keep-small"],
)
def test_degrade_keeps_an_odd_size(
    tmp_path: Path, flags: list[str], size: tuple[int, int], noted: bool
) -> None:
    frames = noise(6, 143, 175)
    src = tmp_path / "odd.mp4"
    with VideoWriter(src, 25, crf=10, exact_size=True) as writer:
        writer.write(frames)
    original = read_frames(src)[0]
    out = tmp_path / "out.mp4"
    r = run_cli("degrade", src, out, *flags)
    assert r.returncode == 0, r.stderr
    info = probe(out)
    assert ((info.width, info.height), info.frame_count) == (size, 6)
    note = "avrestore: degrade: 175x143 has an odd side: kept by writing H.264 4:4:4"
    assert (note in r.stderr) == noted and r.stderr.count("\n") == 1 + noted
    if flags == ["--compress", "30"]:  # compressed as compress() does, padded to even
        expected = video_psnr(original, compress(original, 30))
        assert video_psnr(original, read_frames(out)[0]) == pytest.approx(expected, abs=0.3)


# --- signals and a full disk -------------------------------------------------------------------


@pytest.fixture(scope="module")
def long_clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """10 s of 320x240 noise: seconds of work for ``degrade``, time to signal it."""
    path = tmp_path_factory.mktemp("long") / "long.mp4"
    with VideoWriter(path, 25, crf=23, preset="ultrafast") as writer:
        for _ in range(5):
            writer.write(noise(50, 240, 320))
    return path


def _degrade_until_it_writes(src: Path, out: Path) -> subprocess.Popen:
    """Start ``avrestore degrade`` and return once its temporary output exists."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "avrestore", "degrade", str(src), str(out),
         "--blur", "21", "--downscale", "2", "--compress", "30"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    deadline = time.monotonic() + 120
    while not any(out.parent.iterdir()):
        assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
        time.sleep(0.01)
    return proc


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["int", "term"])
def test_a_signal_removes_the_partial_output_and_says_so(
    long_clip: Path, tmp_path: Path, signum: int
) -> None:
    out = tmp_path / "out.mp4"
    proc = _degrade_until_it_writes(long_clip, out)
    proc.send_signal(signum)
    stdout, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 128 + signum, stderr
    assert stderr == "avrestore: interrupted; no partial output was kept\n" and stdout == ""
    assert list(tmp_path.iterdir()) == []


def test_the_next_run_removes_what_a_killed_one_left(long_clip: Path, tmp_path: Path) -> None:
    out = tmp_path / "out.mp4"
    proc = _degrade_until_it_writes(long_clip, out)
    proc.kill()  # SIGKILL: nothing runs, the temporary files stay
    proc.communicate(timeout=60)
    left = sorted(p.name for p in tmp_path.iterdir())
    assert left and all(f"-{proc.pid}-" in name for name in left)
    # One of a live process (this one), named the same way, is not touched.
    live = tmp_path / re.sub(rf"-{proc.pid}-\w+\.", f"-{os.getpid()}-abcd1234.", left[0])
    live.write_bytes(b"half")
    small = tmp_path / "small.mp4"
    r = run_cli("degrade", long_clip, small, "--downscale", "4", "--keep-small")
    assert r.returncode == 0, r.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([live.name, small.name])


def test_a_full_disk_is_one_line_and_keeps_nothing(
    tiny_video: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    def full(self: VideoWriter, frames: np.ndarray) -> None:
        raise av.error.OSError(errno.ENOSPC, "No space left on device", str(self.path))

    monkeypatch.setattr(VideoWriter, "write", full)
    out = tmp_path / "out.mp4"
    monkeypatch.setattr(
        sys, "argv", ["avrestore", "degrade", str(tiny_video), str(out), "--blur", "3"]
    )
    with pytest.raises(SystemExit) as exited:
        main()
    assert exited.value.code == 1
    assert capsys.readouterr().err.splitlines() == [
        f"avrestore: error: no space left on the device writing {out}; nothing was kept"
    ]
    assert list(tmp_path.iterdir()) == []
