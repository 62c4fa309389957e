"""Preparing face-centred clips: layouts, splits, rejection reasons, the CLI end to end."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from conftest import run_cli

from avrestore.data import prepare_run
from avrestore.data.layouts import find_clips
from avrestore.data.prepare import ClipPreparer, ClipRejected, PrepareOptions
from avrestore.data.prepare_run import parse_shard, prepare_dataset
from avrestore.data.split import assign_groups, parse_fractions, split_clips
from avrestore.errors import InputError
from avrestore.media.audio import Audio
from avrestore.media.video import VideoWriter, probe, read_frames


def _touch(root: Path, *names: str) -> None:
    for name in names:
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(b"")


def _read_splits(dst: Path) -> dict[str, list[str]]:
    return {n: (dst / "splits" / f"{n}.txt").read_text().split() for n in ("train", "val", "test")}


# --- layouts ----------------------------------------------------------------------------------


def test_voxceleb2_layout_takes_the_speaker_from_the_id_folder(tmp_path: Path) -> None:
    _touch(tmp_path, "dev/mp4/id00012/abc-_x/00001.mp4", "dev/mp4/id00012/zz/00002.mp4")
    _touch(tmp_path, "test/mp4/id07/q/00001.mp4", "other/readme.mp4")
    clips = find_clips(tmp_path, "voxceleb2")
    assert [(c.clip_id, c.speaker) for c in clips] == [
        ("id00012__abc-_x__00001", "id00012"),
        ("id00012__zz__00002", "id00012"),
        ("id07__q__00001", "id07"),
    ]
    assert all(c.group == c.speaker for c in clips)


def test_obama_layout_groups_clips_by_source_video(tmp_path: Path) -> None:
    _touch(tmp_path, "weekly_01/000.mp4", "weekly_01/001.mp4", "weekly_02/000.mp4", "solo.mp4")
    clips = {c.clip_id: c for c in find_clips(tmp_path, "obama")}
    assert {c.speaker for c in clips.values()} == {"obama"}
    assert clips["weekly_01__000"].group == clips["weekly_01__001"].group == "weekly_01"
    assert clips["solo"].group == "solo" and clips["weekly_02__000"].group == "weekly_02"


def test_folder_layout_reads_speakers_from_a_tsv_or_a_regex(tmp_path: Path) -> None:
    _touch(tmp_path, "grid_a.mpg", "grid_b.mpg", "sub/obama_1.mp4", "mystery.mov", "notes.txt")
    (tmp_path / "SOURCES.tsv").write_text(
        "file\tspeaker\tlicence\ngrid_a.mpg\tgrid\tx\ngrid_b.mpg\tgrid\tx\nobama_1.mp4\tobama\tx\n"
    )
    clips = {c.clip_id: c for c in find_clips(tmp_path, "folder")}
    assert set(clips) == {"grid_a", "grid_b", "sub__obama_1", "mystery"}
    assert clips["grid_a"].speaker == clips["grid_b"].speaker == "grid"
    assert clips["sub__obama_1"].speaker == "obama"
    assert clips["mystery"].speaker == "mystery" and not clips["mystery"].speaker_known
    by_regex = {
        c.clip_id: c.speaker
        for c in find_clips(tmp_path, "folder", speaker_regex=r"(?P<speaker>[a-z]+)_")
    }
    assert by_regex == {
        "grid_a": "grid",
        "grid_b": "grid",
        "sub__obama_1": "obama",
        "mystery": "mystery",
    }


def test_layout_errors_are_input_errors(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="does not exist"):
        find_clips(tmp_path / "nope", "folder")
    with pytest.raises(InputError, match="no folder clips"):
        find_clips(tmp_path, "folder")
    _touch(tmp_path, "a.mp4", "a.mov")
    with pytest.raises(InputError, match="two clips map to the id a"):
        find_clips(tmp_path, "folder")
    with pytest.raises(InputError, match="unknown layout"):
        find_clips(tmp_path, "lrs3")
    (tmp_path / "bad.tsv").write_text("name\twho\nx\ty\n")
    with pytest.raises(InputError, match="'file' and 'speaker'"):
        find_clips(tmp_path, "folder", speakers_tsv=tmp_path / "bad.tsv")
    (tmp_path / "empty.tsv").write_text("file\tspeaker\n")
    with pytest.raises(InputError, match="a header but no rows"):
        find_clips(tmp_path, "folder", speakers_tsv=tmp_path / "empty.tsv")
    with pytest.raises(InputError, match=r"takes a folder of videos; .*a\.mp4 is a file"):
        find_clips(tmp_path / "a.mp4", "folder")


# --- splits -----------------------------------------------------------------------------------


def test_split_is_speaker_disjoint_and_reproducible() -> None:
    speakers = [f"spk{i:02d}" for i in range(34)]
    clip_groups = {f"{s}_clip{j}": s for s in speakers for j in range(3)}
    assignment = assign_groups(list(clip_groups.values()), (0.8, 0.1, 0.1), seed=7)
    counts = {n: sum(v == n for v in assignment.values()) for n in ("train", "val", "test")}
    assert counts == {"train": 28, "val": 3, "test": 3}
    splits = split_clips(clip_groups, assignment)
    seen = [{clip_groups[c] for c in splits[n]} for n in ("train", "val", "test")]
    assert not (seen[0] & seen[1] or seen[0] & seen[2] or seen[1] & seen[2])
    assert sum(map(len, splits.values())) == len(clip_groups)
    # Same seed, same split whatever the order; another seed moves speakers.
    assert assign_groups(sorted(speakers, reverse=True), (0.8, 0.1, 0.1), 7) == assignment
    assert assign_groups(speakers, (0.8, 0.1, 0.1), 8) != assignment


def test_split_gives_every_held_out_share_a_speaker_when_possible() -> None:
    assert sorted(assign_groups(["a", "b", "c"], (0.8, 0.1, 0.1), 0).values()) == [
        "test",
        "train",
        "val",
    ]
    assert set(assign_groups(["a", "b"], (0.8, 0.1, 0.1), 0).values()) == {"train"}


def test_split_and_shard_options_are_checked() -> None:
    assert parse_fractions("0.7, 0.2, 0.1") == (0.7, 0.2, 0.1)
    assert parse_shard("1/4") == (1, 4)
    for bad in ("0.8,0.1", "0.8,0.3,0.1", "a,b,c", "1.2,-0.1,-0.1"):
        with pytest.raises(InputError, match="--split"):
            parse_fractions(bad)
    for bad in ("4/4", "-1/2", "1", "x/y"):
        with pytest.raises(InputError, match="--shard"):
            parse_shard(bad)


# --- one clip: rejection reasons (real dlib, few frames) ---------------------------------------


def _write_video(path: Path, frames: np.ndarray, fps: float = 25, audio: bool = False) -> Path:
    sound = Audio(np.zeros((1, int(len(frames) / fps * 16000)), np.float32), 16000)
    with VideoWriter(path, fps, crf=10, audio=sound if audio else None) as w:
        w.write(frames)
    return path


@pytest.fixture(scope="module")
def preparer() -> ClipPreparer:
    return ClipPreparer(PrepareOptions(size=96, max_frames=20))


@pytest.fixture(scope="module")
def noise_frames() -> np.ndarray:
    return np.random.default_rng(0).integers(90, 110, (10, 96, 128, 3), dtype=np.uint8)


def _clip(path: Path):
    from avrestore.data.layouts import ClipSource

    return ClipSource(path.stem, path, "s", "s")


def test_clip_without_a_face_is_rejected(preparer, noise_frames, tmp_path: Path) -> None:
    path = _write_video(tmp_path / "noface.mp4", noise_frames, audio=True)
    with pytest.raises(ClipRejected, match="no face found"):
        preparer.prepare(_clip(path), tmp_path)


def test_clip_of_one_frame_is_rejected(preparer, noise_frames, tmp_path: Path) -> None:
    path = _write_video(tmp_path / "one.mp4", noise_frames[:1])
    with pytest.raises(ClipRejected, match="too short: 1 frame"):
        preparer.prepare(_clip(path), tmp_path)


def test_face_missing_too_often_is_rejected(
    preparer, grid_clip, tmp_path: Path, monkeypatch
) -> None:
    faces = read_frames(grid_clip, max_frames=6)[0]
    frames = np.concatenate([faces, np.full((6, 288, 360, 3), 100, np.uint8)])
    path = _write_video(tmp_path / "half.mp4", frames)
    with pytest.raises(ClipRejected, match=r"face missing in 50% of searched frames \(limit 20%\)"):
        preparer.prepare(_clip(path), tmp_path)
    # Allowed when the limit says so; the gap is filled from the last boxes.
    monkeypatch.setattr(preparer, "options", replace(preparer.options, max_missing=0.6))
    track = preparer.track(path, 25.0)
    assert track.face_found_ratio == 0.5 and not np.isnan(track.crop_boxes).any()
    # Held within a few pixels of a ~230-pixel box (the smoothing still eases into the gap).
    assert np.abs(track.crop_boxes[6:] - track.crop_boxes[5]).max() < 8


def test_require_audio_rejects_a_silent_clip(
    preparer, silent_clip, tmp_path: Path, monkeypatch
) -> None:
    monkeypatch.setattr(preparer, "options", replace(preparer.options, require_audio=True))
    with pytest.raises(ClipRejected, match="no audio track"):
        preparer.prepare(_clip(silent_clip), tmp_path)


# --- whole runs -------------------------------------------------------------------------------


def test_a_crash_leaves_no_half_written_clip(tmp_path: Path, monkeypatch) -> None:
    src = tmp_path / "src"
    _touch(src, "a.mp4", "b.mp4")

    class Crashing:
        def __init__(self, options: PrepareOptions) -> None:
            pass

        def prepare(self, clip, out: Path) -> dict:
            (out / "face.mp4").write_bytes(b"half")
            if clip.clip_id == "b":
                raise RuntimeError("disk on fire")
            (out / "meta.json").write_text(
                json.dumps(
                    {
                        "frames": 3,
                        "fps": 25.0,
                        "seconds": 1.0,
                        "has_audio": True,
                        "several_faces_ratio": 0,
                    }
                )
            )
            return {}

    monkeypatch.setattr(prepare_run, "ClipPreparer", Crashing)
    dst = tmp_path / "dst"
    summary = prepare_dataset(src, dst, "folder", PrepareOptions())
    assert summary["kept"] == 1 and summary["rejections"] == {"b": "RuntimeError: disk on fire"}
    assert sorted(p.name for p in (dst / "clips").iterdir()) == ["a"]  # no b, no .part folder


def test_shards_split_the_work_and_agree_on_the_split(tmp_path: Path, monkeypatch) -> None:
    src = tmp_path / "src"
    _touch(src, *(f"spk{i}_{j}.mp4" for i in range(6) for j in range(2)))
    done: list[str] = []

    class Fake:
        def __init__(self, options: PrepareOptions) -> None:
            pass

        def prepare(self, clip, out: Path) -> dict:
            done.append(clip.clip_id)
            meta = {
                "frames": 2,
                "fps": 25.0,
                "seconds": 0.1,
                "has_audio": True,
                "several_faces_ratio": 0,
            }
            (out / "meta.json").write_text(json.dumps(meta))
            return meta

    monkeypatch.setattr(prepare_run, "ClipPreparer", Fake)
    dst = tmp_path / "dst"
    regex = r"(spk\d)_"
    first = prepare_dataset(src, dst, "folder", PrepareOptions(), shard=(0, 2), speaker_regex=regex)
    splits_after_first = _read_splits(dst)
    assert first["kept"] == 6 and first["pending"] == 6
    second = prepare_dataset(
        src, dst, "folder", PrepareOptions(), shard=(1, 2), speaker_regex=regex
    )
    assert second["kept"] == 12 and second["pending"] == 0 and sorted(done) == sorted(set(done))
    splits = _read_splits(dst)
    for name in splits:  # the first shard's clips keep their split once all are in
        assert set(splits_after_first[name]) <= set(splits[name])
    again = prepare_dataset(src, dst, "folder", PrepareOptions(), speaker_regex=regex)
    assert again["this_run"]["processed"] == 0 and len(done) == 12


@pytest.mark.slow
def test_prepare_cli_end_to_end(grid_clip, talking_heads, noise_frames, tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    for name in ("grid_bbaf2n.mpg", "styletalk_Obama_clip1.mp4"):
        (src / name).symlink_to(talking_heads / name)
    _write_video(src / "noface.mp4", noise_frames, audio=True)
    (src / "notes.mp4").write_text("not a video\n")
    (src / "who.tsv").write_text(
        "file\tspeaker\ngrid_bbaf2n.mpg\tgrid\nstyletalk_Obama_clip1.mp4"
        "\tobama\nnoface.mp4\tnobody\nnotes.mp4\tnobody\n"
    )
    dst = tmp_path / "out"
    args = (
        "prepare",
        src,
        dst,
        "--speakers",
        src / "who.tsv",
        "--size",
        "128",
        "--max-frames",
        "20",
    )
    r = run_cli(*args)
    assert r.returncode == 0, r.stderr
    assert "2 kept (40 frames" in r.stdout and "2 rejected" in r.stdout

    summary = json.loads((dst / "summary.json").read_text())
    assert summary["kept"] == 2 and summary["frames"] == 40
    assert summary["rejections"]["noface"] == "no face found"
    assert summary["rejections"]["notes"].startswith("not a readable media file")
    for clip_id, fps in (("grid_bbaf2n", 25.0), ("styletalk_Obama_clip1", 30.0)):
        folder = dst / "clips" / clip_id
        meta = json.loads((folder / "meta.json").read_text())
        assert meta["frames"] == 20 and meta["fps"] == fps and meta["has_audio"]
        assert meta["face_found_ratio"] == 1.0
        info = probe(folder / "face.mp4")
        assert (info.width, info.height, info.frame_count) == (128, 128, 20)
        landmarks, boxes = np.load(folder / "landmarks.npy"), np.load(folder / "boxes.npy")
        assert landmarks.shape == (20, 68, 2) and boxes.shape == (20, 4)
        assert landmarks.dtype == boxes.dtype == np.float32
        assert (landmarks > 0).all() and (landmarks < 128).all()
        np.testing.assert_allclose(boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1])
        audio, rate = sf.read(folder / "audio.wav")
        assert rate == 16000 and audio.ndim == 1 and len(audio) == round(20 / fps * 16000)
    splits = _read_splits(dst)
    assert sorted(c for clips in splits.values() for c in clips) == [
        "grid_bbaf2n",
        "styletalk_Obama_clip1",
    ]

    stamp = (dst / "clips" / "grid_bbaf2n" / "face.mp4").stat().st_mtime_ns
    again = run_cli(*args)
    assert again.returncode == 0, again.stderr
    assert json.loads((dst / "summary.json").read_text())["this_run"]["processed"] == 0
    assert (dst / "clips" / "grid_bbaf2n" / "face.mp4").stat().st_mtime_ns == stamp


def test_prepare_rejects_bad_folders(tmp_path: Path) -> None:
    r = run_cli("prepare", tmp_path / "missing", tmp_path / "out")
    assert r.returncode == 2 and "source folder does not exist" in r.stderr
    with pytest.raises(InputError, match="must not lie inside"):
        prepare_dataset(tmp_path, tmp_path / "inside", "folder", PrepareOptions())
