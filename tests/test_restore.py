"""``avrestore restore``: face tracks and gaps, the feathered paste, the streaming passes on real
clips with a tiny untrained GAVN, the written file (frames, rate, audio), and bad input.

The quality check (the face gets closer to the original) needs trained weights and runs only
once ``weights/gavn-small-car.safetensors`` and ``weights/landmark-net.safetensors`` exist.
"""

from __future__ import annotations

import hashlib
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import av
import cv2
import numpy as np
import pytest
import torch
from av.sidedata.sidedata import Type as SideDataType
from conftest import run_cli
from test_media import cut_short, write_stored

from avrestore.audio import audio_windows
from avrestore.bench.realtime import face_psnr
from avrestore.degrade import Degradation, degrade_video, upscale
from avrestore.errors import InputError
from avrestore.faces.crop import crop_square
from avrestore.media.audio import read_audio
from avrestore.media.video import VideoWriter, probe, read_frames
from avrestore.models.landmarkers import load_landmarker
from avrestore.models.registry import build
from avrestore.models.weights import WEIGHTS_DIR, save_model
from avrestore.restore.crops import FaceRestorer
from avrestore.restore.paste import feather_mask, paste_face
from avrestore.restore.runtime import RestorePath
from avrestore.restore.stream import plan_restoration, restored_frames
from avrestore.restore.timing import STAGES
from avrestore.restore.tracks import Track, active_frames, follow_faces
from avrestore.restore.video import load_restoration_model, restore_video, task_scale

FRAMES = 24  # frames restored per real-clip test: about a second of video


@pytest.fixture(autouse=True)
def _one_thread(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    # Two torch threads on the two shared cores run GAVN several times slower than one.
    monkeypatch.setenv("OMP_NUM_THREADS", "1")  # the CLI's subprocesses
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def tiny_models(
    tmp_path_factory: pytest.TempPathFactory, tiny_gavn_spec: dict
) -> tuple[Path, Path]:
    """A tiny GAVN (with audio and landmark branches) moved off its identity init, as training
    would, and an untrained landmark network."""
    folder = tmp_path_factory.mktemp("weights")
    args = dict(tiny_gavn_spec)
    torch.manual_seed(0)
    gavn = build(args.pop("type"), **args)
    with torch.no_grad():
        for p in gavn.parameters():
            p.add_(0.02 * torch.randn_like(p))
    save_model(gavn, folder / "gavn.safetensors", tiny_gavn_spec)
    save_model(build("landmark-net"), folder / "landmarks.safetensors", {"type": "landmark-net"})
    return folder / "gavn.safetensors", folder / "landmarks.safetensors"


@pytest.fixture(scope="module")
def compressed(grid_clip: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The GRID clip compressed at CRF 40, its stereo 44.1 kHz audio kept."""
    out = tmp_path_factory.mktemp("lq") / "grid_crf40.mp4"
    return degrade_video(grid_clip, out, Degradation(crf=40), progress=False)


def _restorer(
    models: tuple[Path, Path], clip: Path, frames: int, fps: float, workers: int = 1
) -> FaceRestorer:
    audio = read_audio(clip)
    windows = None if audio is None else audio_windows(audio.mono, audio.rate, frames, fps)
    landmarker = load_landmarker(str(models[1]))
    net = load_restoration_model(models[0])
    return FaceRestorer(net, windows, landmarker, workers=workers)


def _md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


# --- tracks and gaps -------------------------------------------------------------------------


def test_short_gaps_are_bridged_and_long_ones_pass_through() -> None:
    found = np.zeros(40, bool)
    found[[0, 2, 4, 10, 12, 30, 32]] = True
    active = active_frames(found, max_gap=5)
    # Gaps of 1 and 5 frames are bridged; 13 (12 -> 30) and the trailing 7 are not.
    assert active[:13].all() and not active[13:30].any()
    assert active[30:33].all() and not active[33:].any()
    assert Track(np.zeros((40, 4)), active).runs() == [(0, 13), (30, 33)]


def test_leading_gap_within_the_limit_is_restored() -> None:
    found = np.zeros(10, bool)
    found[3:] = True
    assert active_frames(found, max_gap=3).all()
    assert not active_frames(found, max_gap=2)[:3].any()


def _two_faces(frames: int) -> list[np.ndarray | None]:
    big, small = np.array([10, 10, 110, 110.0]), np.array([200, 20, 260, 80.0])
    detections: list[np.ndarray | None] = []
    for t in range(frames):
        if t % 2:
            detections.append(None)  # not searched
        else:
            detections.append(np.stack([big + t, small - t]))
    detections[4] = np.concatenate([detections[4], [[150, 150, 160, 160]]])  # a false positive
    return detections


def test_the_largest_face_is_tracked_alone_by_default() -> None:
    (track,) = follow_faces(_two_faces(20))
    assert np.allclose(track[0], [10, 10, 110, 110]) and np.isnan(track[1]).all()


def test_all_faces_tracks_each_face_once_largest_first() -> None:
    tracks = follow_faces(_two_faces(20), several=True)
    assert len(tracks) == 2  # the false positive, seen once, is dropped
    assert np.allclose(tracks[0][18], [28, 28, 128, 128])
    assert np.allclose(tracks[1][18], [182, 2, 242, 62])


def test_no_detection_gives_no_track() -> None:
    assert follow_faces([None, np.zeros((0, 4)), None], several=True) == []


# --- the feathered paste ---------------------------------------------------------------------


def test_feather_mask_is_zero_on_the_border_and_one_inside() -> None:
    m = feather_mask(224)
    assert m.shape == (224, 224) and m.min() == 0 and m.max() == 1
    assert (m[0] == 0).all() and (m[:, -1] == 0).all() and m[28:-28, 28:-28].min() == 1
    assert np.array_equal(m, m.T) and np.array_equal(m, m[::-1, ::-1])
    assert (np.diff(m[112, :113]) >= 0).all()  # rises monotonically towards the middle


def _smooth_frame(h: int, w: int) -> np.ndarray:
    yy, xx = np.mgrid[0:h, 0:w]
    return np.stack([xx % 200, yy % 200, (xx + yy) % 200], -1).astype(np.uint8) + 20


@pytest.mark.parametrize("box", [[-20, 30, 60, 110], [40, -10, 340, 290], [5, 5, 229, 229]])
def test_paste_adds_the_change_inside_the_box_only(box: list[int]) -> None:
    frame = _smooth_frame(240, 320)
    before = frame.copy()
    crop, used = crop_square(frame, np.array(box, np.float32), 224)
    paste_face(frame, np.clip(crop.astype(int) + 10, 0, 255).astype(np.uint8), crop, used)
    x0, y0, x1, y1 = box
    outside = np.ones(frame.shape[:2], bool)
    outside[max(y0, 0) : y1, max(x0, 0) : x1] = False
    assert np.array_equal(frame[outside], before[outside])
    cx, cy, r = (x0 + x1) // 2, (y0 + y1) // 2, (x1 - x0) // 5  # the middle, where the mask is 1
    middle = (slice(cy - r, cy + r), slice(cx - r, cx + r))
    assert np.abs(frame[middle].astype(int) - before[middle] - 10).max() <= 1


def test_a_model_that_changes_nothing_leaves_any_face_size_bit_for_bit() -> None:
    rng = np.random.default_rng(0)
    frame = rng.integers(0, 256, (400, 400, 3), dtype=np.uint8)
    before = frame.copy()
    for box in ([10, 10, 390, 390], [100, 100, 180, 180]):  # crops shrunk, then enlarged
        crop, used = crop_square(frame, np.array(box, np.float32), 224)
        paste_face(frame, crop, crop, used)
    assert np.array_equal(frame, before)


# --- the two passes on real clips ------------------------------------------------------------


def test_outside_the_face_frames_are_the_input_bit_for_bit(
    compressed: Path, tiny_models: tuple[Path, Path]
) -> None:
    plan = plan_restoration(compressed, max_frames=FRAMES)
    assert plan.frames == FRAMES and plan.fps == 25 and len(plan.tracks) == 1
    (track,) = plan.tracks
    assert track.active.all()
    restorer = _restorer(tiny_models, compressed, plan.frames, plan.fps)
    pairs = list(restored_frames(compressed, plan, restorer))
    assert len(pairs) == FRAMES
    inputs = read_frames(compressed, fps=plan.fps, max_frames=FRAMES)[0]
    for t, (before, after) in enumerate(pairs):
        assert np.array_equal(before, inputs[t])
        _, box = crop_square(before, track.boxes[t], plan.size)
        x0, y0, x1, y1 = box.astype(int)
        inside = np.zeros(before.shape[:2], bool)
        inside[max(y0, 0) : y1, max(x0, 0) : x1] = True
        assert np.array_equal(after[~inside], before[~inside])
        assert not np.array_equal(after[inside], before[inside])


def test_overlapped_short_blocks_and_parallel_spans_give_the_reference_frames_bit_for_bit(
    compressed: Path, tiny_models: tuple[Path, Path]
) -> None:
    plan = plan_restoration(compressed, max_frames=FRAMES)
    restorer = _restorer(tiny_models, compressed, plan.frames, plan.fps)
    reference = list(restored_frames(compressed, plan, restorer))
    fast = list(restored_frames(compressed, plan, restorer, block=6, overlap=True))
    # Two workers, each restoring part of every block (landmarks and model) in its own thread.
    parallel = _restorer(tiny_models, compressed, plan.frames, plan.fps, workers=2)
    spans = list(restored_frames(compressed, plan, parallel, block=12, overlap=True))
    assert len(fast) == len(spans) == len(reference) == FRAMES
    for (a, b), (c, d), (e, f) in zip(reference, fast, spans, strict=True):
        assert np.array_equal(a, c) and np.array_equal(b, d)
        assert np.array_equal(a, e) and np.array_equal(b, f)
    assert parallel.clock.cpu_seconds["landmarks"] > 0 and parallel.clock.cpu_seconds["model"] > 0


def test_every_stage_of_a_real_restore_is_timed_and_none_twice(
    compressed: Path, tiny_models: tuple[Path, Path], tmp_path: Path
) -> None:
    summary = restore_video(compressed, tmp_path / "out.mp4", "car", *tiny_models, max_frames=8)
    assert list(summary.stages) == list(summary.cpu_stages) == list(STAGES)
    assert all(seconds > 0 for seconds in summary.stages.values()), summary.stages
    assert all(seconds >= 0 for seconds in summary.cpu_stages.values()), summary.cpu_stages
    # Serial stages (one thread) never count a moment twice: no speed is asserted, only sums.
    assert sum(summary.stages.values()) <= summary.seconds
    assert sum(summary.cpu_stages.values()) <= summary.cpu_seconds
    latency = summary.latency
    assert 0 < latency["min"] <= latency["mean"] <= latency["max"] <= summary.seconds


@pytest.fixture(scope="module")
def face_gap_clip(grid_clip: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """12 GRID frames, 20 grey ones (0.8 s without a face), 12 GRID frames; no audio."""
    frames, fps = read_frames(grid_clip, max_frames=24)
    grey = np.full((20, *frames.shape[1:]), 128, np.uint8)
    path = tmp_path_factory.mktemp("gap") / "gap.mp4"
    with VideoWriter(path, fps, crf=18) as writer:
        writer.write(np.concatenate([frames[:12], grey, frames[12:]]))
    return path


def test_frames_without_a_face_pass_through(
    face_gap_clip: Path, tiny_models: tuple[Path, Path]
) -> None:
    plan = plan_restoration(face_gap_clip)
    (track,) = plan.tracks
    # Frames skipped by the detector just before the grey run count as part of it.
    assert track.active[:10].all() and not track.active[12:32].any() and track.active[32:].all()
    restorer = _restorer(tiny_models, face_gap_clip, plan.frames, plan.fps)
    changed = [not np.array_equal(a, b) for a, b in restored_frames(face_gap_clip, plan, restorer)]
    assert changed == list(track.active)


def test_all_faces_finds_two_side_by_side(grid_clip: Path, tmp_path: Path) -> None:
    frames, fps = read_frames(grid_clip, max_frames=12)
    half = frames[:, ::2, ::2]
    pad = np.zeros((12, frames.shape[1] - half.shape[1], half.shape[2], 3), np.uint8)
    path = tmp_path / "two.mp4"
    with VideoWriter(path, fps) as writer:
        writer.write(np.concatenate([frames, np.concatenate([half, pad], 1)], axis=2))
    (one,) = plan_restoration(path).tracks
    big, small = plan_restoration(path, all_faces=True).tracks
    assert np.array_equal(one.boxes, big.boxes)
    assert big.boxes[0, 2] <= frames.shape[2] + 60 and small.boxes[0, 0] >= frames.shape[2] - 60
    side = lambda b: b[:, 2] - b[:, 0]  # noqa: E731
    assert np.allclose(side(small.boxes), side(big.boxes) / 2, rtol=0.2)


# --- the written file --------------------------------------------------------------------------


def test_cli_writes_frames_rate_audio_and_a_comparison(
    compressed: Path, tiny_models: tuple[Path, Path], tmp_path: Path
) -> None:
    out, png = tmp_path / "restored.mp4", tmp_path / "compare.png"
    md5 = _md5(compressed)
    r = run_cli(
        "restore", compressed, "-o", out, "--task", "car", "--model", tiny_models[0],
        "--landmark-model", tiny_models[1], "--compare", png, "--max-frames", FRAMES,
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert f"restored {FRAMES} of {FRAMES} frames" in r.stdout
    info, src = probe(out), probe(compressed)
    assert (info.frame_count, info.fps, info.width, info.height) == (FRAMES, 25, 360, 288)
    assert (info.audio_rate, info.audio_channels) == (src.audio_rate, src.audio_channels)
    audio = read_audio(out, rate=None, mono=False)
    assert abs(audio.duration - FRAMES / 25) < 1024 / src.audio_rate
    image = cv2.imread(str(png))
    assert image.shape[1] > 2 * 360 and image.shape[0] > 288
    assert _md5(compressed) == md5
    assert sorted(p.name for p in tmp_path.iterdir()) == ["compare.png", "restored.mp4"]


def test_a_silent_clip_is_restored_without_audio_and_said_once(
    silent_clip: Path, tiny_models: tuple[Path, Path], tmp_path: Path, capsys
) -> None:
    out, side = tmp_path / "restored.mp4", tmp_path / "side.mp4"
    summary = restore_video(silent_clip, out, "deblur", *tiny_models, compare=side, max_frames=12)
    assert capsys.readouterr().err.count("no audio track") == 1
    assert not summary.has_audio and summary.restored_frames == 12
    info = probe(out)
    assert not info.has_audio and info.frame_count == 12 and (info.width, info.height) == (176, 144)
    pair = probe(side)
    assert pair.frame_count == 12 and pair.width > 2 * 176 and not pair.has_audio


def test_sr_upscales_the_whole_frame(
    grid_clip: Path, tiny_models: tuple[Path, Path], tmp_path: Path
) -> None:
    small = degrade_video(
        grid_clip, tmp_path / "small.mp4", Degradation(downscale=4), keep_small=True, progress=False
    )
    summary = restore_video(small, tmp_path / "sr.mp4", "sr", *tiny_models, scale=4, max_frames=8)
    info = probe(summary.output)
    assert (info.width, info.height, info.frame_count) == (360, 288, 8)
    assert summary.has_audio and info.audio_channels == 2 and summary.restored_frames == 8
    # Faces are restored on the bicubic-upscaled frame, which is kept outside them.
    plan = plan_restoration(small, scale=4, max_frames=4)
    restorer = _restorer(tiny_models, small, plan.frames, plan.fps)
    lq = read_frames(small, fps=plan.fps, max_frames=4)[0]
    pairs = list(restored_frames(small, plan, restorer))
    assert np.array_equal(np.stack([before for before, _ in pairs]), upscale(lq, (288, 360)))


def test_an_interrupted_run_leaves_no_output(
    compressed: Path, tiny_models: tuple[Path, Path], tmp_path: Path, monkeypatch
) -> None:
    def interrupt(self, *args):
        raise KeyboardInterrupt

    monkeypatch.setattr(FaceRestorer, "__call__", interrupt)
    out = tmp_path / "restored.mp4"
    with pytest.raises(KeyboardInterrupt):
        restore_video(
            compressed, out, "car", *tiny_models, compare=tmp_path / "c.mp4", max_frames=8
        )
    assert list(tmp_path.iterdir()) == []


# --- files cut short, turned, of an odd size; SIGTERM ------------------------------------------


def test_a_file_cut_short_is_restored_as_far_as_it_goes(
    grid_clip: Path, tiny_models: tuple[Path, Path], tmp_path: Path, capsys
) -> None:
    whole = write_stored(tmp_path / "whole.mp4", read_frames(grid_clip, max_frames=FRAMES)[0])
    cut = cut_short(whole, tmp_path / "in.mp4", 0.5)
    n = len(read_frames(cut)[0])
    summary = restore_video(cut, tmp_path / "out.mp4", "car", *tiny_models)
    assert (
        f"avrestore: warning: {cut} ends after {n} of the {FRAMES} frames its header states "
        f"(truncated?); restored those {n}"
    ) in capsys.readouterr().err.splitlines()
    assert summary.frames == probe(summary.output).frame_count == n < FRAMES - 4


def test_a_turned_video_is_restored_upright(
    grid_clip: Path, tiny_models: tuple[Path, Path], tmp_path: Path
) -> None:
    frames = read_frames(grid_clip, max_frames=8)[0]
    # Stored sideways, as a phone held upright does, with the turn back in a display matrix.
    src = write_stored(tmp_path / "phone.mp4", np.rot90(frames, -1, axes=(1, 2)), rotation=90)
    summary = restore_video(src, tmp_path / "out.mp4", "car", *tiny_models)
    assert summary.tracks == 1 and summary.restored_frames == 8
    info = probe(summary.output)
    assert (info.width, info.height, info.frame_count) == (360, 288, 8)
    with av.open(str(summary.output)) as c:
        frame = next(c.decode(video=0))
        assert (frame.width, frame.height) == (360, 288)
        assert all(d.type != SideDataType.DISPLAYMATRIX for d in frame.side_data)


def test_an_odd_size_is_kept_and_said_once(
    grid_clip: Path, tiny_models: tuple[Path, Path], tmp_path: Path, capsys
) -> None:
    frames = read_frames(grid_clip, max_frames=4)[0]
    src = tmp_path / "odd.mp4"
    with VideoWriter(src, 25, crf=10, exact_size=True) as writer:
        writer.write(np.ascontiguousarray(frames[:, 21:264, 61:298]))  # 243 x 237
    summary = restore_video(src, tmp_path / "out.mp4", "car", *tiny_models)
    info = probe(summary.output)
    assert (info.width, info.height, info.frame_count) == (237, 243, 4)
    assert (
        capsys.readouterr().err.count("237x243 has an odd side: kept by writing H.264 4:4:4") == 1
    )


def test_sigterm_mid_restore_keeps_nothing_and_says_so(
    compressed: Path, tiny_models: tuple[Path, Path], tmp_path: Path
) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "avrestore", "restore", str(compressed), "-o",
         str(tmp_path / "restored.mp4"), "--task", "car", "--model", str(tiny_models[0]),
         "--landmark-model", str(tiny_models[1])],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    deadline = time.monotonic() + 300
    while not any(tmp_path.iterdir()):  # pass 2 has begun writing
        assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
        time.sleep(0.01)
    proc.send_signal(signal.SIGTERM)
    stdout, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 143, stderr
    assert stderr == "avrestore: interrupted; no partial output was kept\n" and stdout == ""
    assert list(tmp_path.iterdir()) == []


# --- bad input ---------------------------------------------------------------------------------


def test_output_equal_to_input_is_refused_in_one_line(
    compressed: Path, tiny_models: tuple[Path, Path]
) -> None:
    md5 = _md5(compressed)
    r = run_cli("restore", compressed, "-o", compressed, "--task", "car", "--model", tiny_models[0])
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and "is the input" in r.stderr
    assert _md5(compressed) == md5


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"input": "missing.mp4"}, "no such file"),
        ({"output": "out.avi"}, "use one of the suffixes"),
        ({"output": "nowhere/out.mp4"}, "output folder does not exist"),
        ({"compare": "restored.mp4"}, "is the output"),
        ({"compare": "side.gif"}, "use one of the suffixes"),
        ({"task": "denoise"}, "unknown task"),
        ({"scale": 2}, "--scale applies to --task sr only"),
        ({"device": "tpu"}, "--device must be cpu or cuda"),
        ({"batch": 0}, "--batch must be at least 1"),
        ({"threads": 0}, "--threads must be at least 1"),
        (
            {"path": RestorePath(runtime="tensorflow")},
            "runtime must be one of torch, bf16, onnx, auto",
        ),
        ({"path": RestorePath(detect_every=0)}, "detect_every must be at least 1"),
        ({"model": "landmarks"}, "not a face restoration model"),
        ({"landmark_model": "gavn"}, "not a landmark network"),
        ({"model": "no-such-model"}, "no weights for 'no-such-model'"),
    ],
)
def test_bad_arguments_are_input_errors(
    change: dict, message: str, compressed: Path, tiny_models: tuple[Path, Path], tmp_path: Path
) -> None:
    named = {"gavn": tiny_models[0], "landmarks": tiny_models[1]}
    args = {
        "input": compressed,
        "output": tmp_path / "restored.mp4",
        "task": "car",
        "model": tiny_models[0],
        "landmark_model": tiny_models[1],
    }
    for key, value in change.items():
        args[key] = named.get(
            value, tmp_path / value if key in ("input", "output", "compare") else value
        )
    with pytest.raises(InputError, match=message):
        restore_video(**args)
    assert not (tmp_path / "restored.mp4").exists()


def test_missing_landmark_weights_are_named(
    compressed: Path, tiny_models: tuple[Path, Path], tmp_path: Path, monkeypatch
) -> None:
    monkeypatch.setattr("avrestore.models.weights.WEIGHTS_DIR", tmp_path)
    with pytest.raises(InputError, match="landmark-net"):
        restore_video(
            compressed, tmp_path / "out.mp4", "car", tiny_models[0], landmark_model="landmark-net"
        )


def test_scales() -> None:
    assert task_scale("car", None) == 1 and task_scale("sr", None) == 4 and task_scale("sr", 2) == 2
    with pytest.raises(InputError, match="2-8"):
        task_scale("sr", 16)


# --- quality, with the shipped weights -------------------------------------------------------

# Deblurring: the demo's task; its shipped checkpoint restores with dlib's landmarks of the crop.
SHIPPED = [WEIGHTS_DIR / "gavn-small-deblur.safetensors"]


@pytest.mark.skipif(not all(p.exists() for p in SHIPPED), reason="no shipped deblur weights")
def test_shipped_deblur_model_brings_the_face_closer_to_the_original(
    grid_clip: Path, tmp_path: Path
) -> None:
    lq_path = degrade_video(grid_clip, tmp_path / "lq.mp4", Degradation(blur=21), False)
    out = restore_video(lq_path, tmp_path / "restored.mp4", "deblur").output
    original, fps = read_frames(grid_clip, fps=25)
    (track,) = plan_restoration(grid_clip).tracks
    lq, restored = read_frames(lq_path, fps=fps)[0], read_frames(out, fps=fps)[0]

    before, after = (face_psnr(f, original, track.boxes) for f in (lq, restored))
    assert after > before, f"face PSNR {before:.2f} dB before, {after:.2f} dB after"
