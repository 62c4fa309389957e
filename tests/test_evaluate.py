"""``avrestore evaluate`` on two real GRID clips (raw videos, 12 frames each): the JSON, the
``input`` and ``bicubic`` baselines recomputed independently, the table, the PNG, the cache,
and bad input."""

from __future__ import annotations

import json
import math
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from conftest import run_cli
from typer.testing import CliRunner

from avrestore.cli.app import app
from avrestore.degrade import Degradation
from avrestore.errors import InputError
from avrestore.evaluate.clips import load_clip
from avrestore.evaluate.protocol import degradation_for
from avrestore.evaluate.report import markdown_table
from avrestore.evaluate.run import evaluate
from avrestore.evaluate.scores import REPORTED, FrameWeightedMeans
from avrestore.faces.crop import crop_square
from avrestore.media.qp import crop_qp
from avrestore.media.video import read_frames
from avrestore.models.cpm import block_transform, luma, qstep
from avrestore.models.registry import build
from avrestore.models.weights import save_model
from avrestore.quality import video_psnr

GRID = ("grid_bbaf2n.mpg", "grid_brbk7n.mpg")
FRAMES, SCALE = 12, 4
TINY = {"channels": 8, "deblur_blocks": 1, "up_blocks": [1, 1]}
NEEDS_WEIGHTS = ("niqe", "lpips", "sync_c", "sync_d")


@pytest.fixture(scope="module")
def raw_dir(talking_heads: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("raw")
    for name in GRID:
        (folder / name).symlink_to(talking_heads / name)
    return folder


@pytest.fixture(scope="module")
def weights(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A tiny GAVN moved off its identity init (as training would) and an untrained landmark
    net, saved as shipped weights are."""
    folder = tmp_path_factory.mktemp("weights")
    torch.manual_seed(0)
    paths = {"tiny": folder / "tiny.safetensors", "landmarks": folder / "lm.safetensors"}
    tiny = build("gavn-small", **TINY)
    with torch.no_grad():
        for p in tiny.parameters():
            p.add_(0.02 * torch.randn_like(p))
    save_model(tiny, paths["tiny"], {"type": "gavn-small", **TINY})
    save_model(build("landmark-net"), paths["landmarks"], {"type": "landmark-net"})
    return paths


@pytest.fixture(scope="module")
def evaluated(raw_dir, weights, tmp_path_factory, one_thread) -> Path:
    """The folder of one ``avrestore evaluate`` run: r.json, r.md, r.png, cache/."""
    out = tmp_path_factory.mktemp("evaluated")
    args = ["evaluate", "--task", "sr", "--level", str(SCALE), "--data", str(raw_dir)]
    tiny = weights["tiny"]
    args += ["--models", f"input,bicubic,{tiny},{tiny}:no-temporal:no-audio"]
    args += ["--max-frames", str(FRAMES)]
    args += ["--landmark-model", str(weights["landmarks"]), "--every", "6"]
    args += ["--cache", str(out / "cache"), "--json", str(out / "r.json")]
    args += ["--markdown", str(out / "r.md"), "--png", str(out / "r.png")]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, (result.output, result.exception)
    return out


def _results(evaluated: Path) -> dict:
    return json.loads((evaluated / "r.json").read_text())


def _prepared(evaluated: Path) -> list[Path]:
    return sorted((evaluated / "cache" / f"faces-first{FRAMES}" / "clips").iterdir())


def test_json_has_every_model_and_metric(evaluated: Path, weights: dict[str, Path]) -> None:
    r = _results(evaluated)
    assert (r["task"], r["level"], r["clips"], r["frames"]) == ("sr", SCALE, 2, 2 * FRAMES)
    assert r["clip_ids"] == [Path(g).stem for g in GRID]
    assert r["landmarks"] == str(weights["landmarks"])
    assert list(r["models"]) == ["input", "bicubic", "tiny", "tiny:no-temporal:no-audio"]
    # The ablated run is the same checkpoint with T zeroed and no audio: a different result.
    assert r["models"]["tiny:no-temporal:no-audio"]["psnr"] != r["models"]["tiny"]["psnr"]
    for name, row in r["models"].items():
        assert set(row) == set(REPORTED), name
        for key, value in row.items():
            if key in NEEDS_WEIGHTS:
                assert value is None, (name, key)
            else:
                assert value is not None and math.isfinite(value), (name, key)
    assert r["models"]["tiny"]["seconds"] > 0


def test_baselines_match_an_independent_computation(evaluated: Path) -> None:
    """``input`` is each small pixel repeated, ``bicubic`` the bicubic upscaling, both of the
    area-downscaled HQ crops; means over all frames."""
    per_clip = {"input": [], "bicubic": []}
    for clip in _prepared(evaluated):
        hq, _ = read_frames(clip / "face.mp4")
        h, w = hq.shape[1:3]
        small = [cv2.resize(f, (w // SCALE, h // SCALE), interpolation=cv2.INTER_AREA) for f in hq]
        nearest = np.stack([f.repeat(SCALE, 0).repeat(SCALE, 1) for f in small])
        bicubic = np.stack([cv2.resize(f, (w, h), interpolation=cv2.INTER_CUBIC) for f in small])
        per_clip["input"].append(video_psnr(nearest, hq))
        per_clip["bicubic"].append(video_psnr(bicubic, hq))
    models = _results(evaluated)["models"]
    for name, values in per_clip.items():
        assert models[name]["psnr"] == pytest.approx(np.mean(values), abs=1e-9)
    assert models["bicubic"]["psnr"] > models["input"]["psnr"] + 1


def test_markdown_table_has_a_row_per_model_and_bolds_the_best(evaluated: Path) -> None:
    lines = (evaluated / "r.md").read_text().splitlines()
    header = next(line for line in lines if line.startswith("| Method"))
    assert "PSNR ↑" in header and "LMD ↓" in header and "NIQE" not in header
    rows = {line.split("|")[1].strip(): line for line in lines if line.startswith("| ")}
    assert set(rows) == {"Method", "input", "bicubic", "tiny", "tiny:no-temporal:no-audio"}
    models = _results(evaluated)["models"]
    best = max(models, key=lambda m: models[m]["psnr"])
    assert f"**{models[best]['psnr']:.2f}**" in rows[best]
    assert sum("**" in rows[m].split("|")[2] for m in models) == 1


def test_png_shows_every_model_and_the_hq_frame(evaluated: Path) -> None:
    grid = cv2.imread(str(evaluated / "r.png"))
    assert grid is not None
    assert grid.shape[0] > 224 and grid.shape[1] >= 5 * 224


def test_second_run_reuses_the_cache(evaluated: Path, raw_dir: Path, one_thread) -> None:
    cached = [*sorted(evaluated.glob(f"cache/**/sr-{SCALE}/*.npy")), *_prepared(evaluated)]
    assert len(cached) == 4
    before = [p.stat().st_mtime_ns for p in cached]
    again = evaluate(
        raw_dir, "sr", SCALE, ["input"], max_frames=FRAMES, every=6, cache=evaluated / "cache"
    )
    assert [p.stat().st_mtime_ns for p in cached] == before
    first = _results(evaluated)["models"]["input"]["psnr"]
    assert again.results["models"]["input"]["psnr"] == pytest.approx(first, abs=1e-12)


@pytest.mark.parametrize(
    ("task", "level", "models", "options", "message"),
    [
        ("sr", 4, ["input", "nosuchmodel"], {}, "nosuchmodel"),
        ("sr", 4, ["input", "input"], {}, "twice"),
        ("sr", 4, ["tiny:no-wings"], {}, "can switch off audio, landmarks, temporal"),
        ("sr", 4, ["tiny:off"], {}, "suffixes are :no-<part>"),
        ("car", 45, ["bicubic"], {}, "bicubic applies"),
        ("denoise", 1, ["input"], {}, "unknown task"),
        ("deblur", 14, ["input"], {}, "--level 14"),
        ("sr", 1, ["input"], {}, "--level 1"),
        ("car", 60, ["input"], {}, "--level 60"),
        ("car", 45, ["input"], {"max_frames": 0}, "--max-frames"),
        ("car", 45, ["input"], {"split": "val"}, "no clips"),
        ("car", 45, ["input"], {"split": "dev"}, "--clips"),
        ("car", 45, ["input"], {"data": "missing"}, "does not exist"),
        ("car", 45, ["tiny"], {"landmark_model": "/nonexistent.safetensors"}, "landmark"),
        ("car", 45, ["tiny"], {"landmark_model": "tiny", "teacher": True}, "either"),
        ("sr", 4, ["input"], {"compress_at": "source"}, "--compress-at"),
        ("car", 45, ["input"], {"compress_at": "frame"}, "--compress-at"),
    ],
)
def test_bad_input_is_refused_before_any_work(
    raw_dir, weights, tmp_path, task, level, models, options, message
) -> None:
    def path(model: str) -> str:
        base, sep, off = model.partition(":")
        return (str(weights[base]) if base in weights else base) + sep + off

    models = [path(m) for m in models]
    landmark_model = options.get("landmark_model")
    data = tmp_path / options["data"] if "data" in options else raw_dir
    with pytest.raises(InputError, match=message):
        evaluate(
            data,
            task,
            level,
            models,
            split=options.get("split"),
            max_frames=options.get("max_frames"),
            landmark_model=str(weights[landmark_model])
            if landmark_model in weights
            else landmark_model,
            teacher_landmarks=options.get("teacher", False),
            cache=tmp_path / "cache",
            compress_at=options.get("compress_at", "crop"),
        )
    assert not (tmp_path / "cache").exists()


def test_car_can_be_compressed_at_the_source_videos_size(
    prepared_root: Path, tmp_path: Path, one_thread
) -> None:
    """``--compress-at source``: the input is the source video compressed whole, cut as
    prepared; a protocol of its own, not the papers' crop compression."""
    kw = {"split": "val", "cache": tmp_path, "max_frames": 9}
    at_source = evaluate(prepared_root, "car", 45, ["input"], compress_at="source", **kw)
    at_crop = evaluate(prepared_root, "car", 45, ["input"], **kw)
    assert at_source.results["compress_at"] == "source"
    assert "compressed at the source video's size" in markdown_table(at_source.results)
    clip = prepared_root / "clips" / "grid_bbaf2n"
    hq = read_frames(clip / "face.mp4")[0][:9]
    copy = read_frames(tmp_path / "crf45src-rgb2" / "grid_bbaf2n.mp4")[0][:9]
    boxes = np.load(clip / "boxes.npy")  # they reach past the frame's edge: crop_square pads
    lq = np.stack(
        [crop_square(f, box, hq.shape[1])[0] for f, box in zip(copy, boxes, strict=False)]
    )
    psnr = at_source.results["models"]["input"]["psnr"]
    assert psnr == pytest.approx(video_psnr(lq, hq), abs=1e-9)
    assert abs(psnr - at_crop.results["models"]["input"]["psnr"]) > 0.1


def test_cli_reports_bad_input_in_one_line(raw_dir: Path) -> None:
    r = run_cli("evaluate", "--task", "car", "--level", "45", "--data", raw_dir, "--models", "x")
    assert r.returncode == 2
    assert r.stderr.startswith("avrestore: error: --models x") and r.stderr.count("\n") == 1


def test_levels_map_to_the_documented_degradations() -> None:
    assert degradation_for("car", 45) == Degradation(crf=45)
    assert degradation_for("deblur", 21) == Degradation(blur=21)
    assert degradation_for("sr", 4) == Degradation(downscale=4)
    assert degradation_for("mixed", 40) == Degradation(blur=15, downscale=2, crf=40)


def test_means_weight_clips_by_frames_and_skip_missing_values() -> None:
    means = FrameWeightedMeans()
    means.add({"psnr": 30.0, "sync_c": None}, 10)
    means.add({"psnr": 20.0, "sync_c": 5.0}, 30)
    out = means.means()
    assert out["psnr"] == pytest.approx(22.5)
    assert out["sync_c"] == 5.0 and out["lpips"] is None


def test_a_model_reading_qp_gets_the_crop_streams_maps_on_the_crop_protocol_only(
    prepared_root: Path, tmp_path: Path, one_thread
) -> None:
    """DAVD-Net's CPM runs on ``--compress-at crop`` (the QP maps of the crop's own stream,
    kept beside its frames) and not on ``source``: only there does ``:no-cpm`` change nothing."""
    spec = {"type": "davd-net-small", "channels": 8, "deform_groups": 1, "front_blocks": 1}
    spec |= {"v_blocks": 1, "reconstruction_blocks": 1, "audio_hidden": 8, "crop_size": 96}
    torch.manual_seed(0)
    args = dict(spec)
    model = build(args.pop("type"), **args)
    with torch.no_grad():  # off its identity init; a brightening the CPM's box cannot hold
        model.reconstruction.conv_last.weight.normal_(std=0.02)
        model.reconstruction.conv_last.bias.fill_(0.2)
    path = tmp_path / "davd.safetensors"
    save_model(model, path, spec)
    kw = {"split": "val", "cache": tmp_path / "cache", "max_frames": 6}
    names = [str(path), f"{path}:no-cpm"]
    crop = evaluate(prepared_root, "car", 45, names, **kw).results["models"]
    assert crop["davd"]["psnr"] > crop["davd:no-cpm"]["psnr"] + 1  # the CPM pulled it back
    kept = tmp_path / "cache" / "evaluate-rgb2" / "car-45"
    assert sorted(p.name for p in kept.iterdir()) == ["grid_bbaf2n.npy", "grid_bbaf2n.qp.npy"]
    # The maps are those of the stream the cached frames came from: the HQ crop lies in the
    # CPM box of the degraded one; a method without QP maps reads the same frames.
    folder = prepared_root / "clips" / "grid_bbaf2n"
    clip = load_clip(folder, tmp_path / "cache", Degradation(crf=45), "car-45", 6, qp=True)
    assert clip.qp is not None and clip.qp.shape == (6, 6, 6) and clip.qp.min() >= 45
    plain = load_clip(folder, tmp_path / "cache", Degradation(crf=45), "car-45", 6)
    assert plain.qp is None and np.array_equal(plain.degraded, clip.degraded)
    y = [luma(torch.tensor(f).permute(0, 3, 1, 2).double() / 255) for f in (clip.hq, plain.lq)]
    q = qstep(torch.from_numpy(crop_qp(clip.qp, 0, 0, 96, 96))).double()  # per 4x4 block
    inside = block_transform(y[0] - y[1]).abs() / q[..., None, None] <= 0.5
    assert float(inside.double().mean()) >= 0.98
    source = evaluate(prepared_root, "car", 45, names, compress_at="source", **kw).results
    scores = [{k: v for k, v in m.items() if k != "seconds"} for m in source["models"].values()]
    assert scores[0] == scores[1]
