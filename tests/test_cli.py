"""The command line end to end: ``degrade`` on the real GRID clip, ``demo``, and bad input
(one ``avrestore: error:`` line, exit code 2, nothing written)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from conftest import run_cli

from avrestore.cli.degrade import parse_level
from avrestore.degrade import Degradation, downscale
from avrestore.errors import InputError
from avrestore.media.audio import read_audio
from avrestore.media.video import probe, read_frames
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
    code = (
        "import sys, avrestore.cli\n"
        "print(sorted({'torch', 'cv2', 'av', 'dlib', 'scipy'} & set(sys.modules)))"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and r.stdout.strip() == "[]", r.stdout + r.stderr
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
