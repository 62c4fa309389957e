"""``avrestore leaderboard`` on the small prepared fixture (96² clips, a few frames) with two
tiny untrained deblurring checkpoints and a landmark network (skipped): the page's rows are
evaluate's results, the cache spares a rerun, a removed checkpoint leaves the page, the
pictures, a VQ autoencoder's ceiling, and bad input."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from conftest import PREPARED_SIZE, TINY_GAVN, run_cli
from typer.testing import CliRunner

from avrestore.cli.app import app
from avrestore.data.clip_cache import clip_frames
from avrestore.evaluate.report import COLUMNS
from avrestore.evaluate.run import evaluate
from avrestore.evaluate.sources import select_clips
from avrestore.leaderboard import LEVELS
from avrestore.leaderboard.plot import HEIGHT, WIDTH, _linear_axis, _log_axis
from avrestore.leaderboard.run import clip_digest
from avrestore.media.files import sha256_file
from avrestore.models.complexity import measure
from avrestore.models.registry import build
from avrestore.models.weights import load_model, save_model
from avrestore.quality import psnr

FRAMES, EVERY, SPLIT = 6, 3, "val"  # the fixture's splits are train and val
NETWORKS = ("tiny-a", "tiny-b")


@pytest.fixture(scope="module")
def data(prepared_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the prepared fixture: evaluate caches degraded clips in DATA/cache."""
    copy = tmp_path_factory.mktemp("leaderboard") / "prepared"
    shutil.copytree(prepared_root, copy, ignore=shutil.ignore_patterns("cache"))
    return copy


def _tiny(seed: int) -> torch.nn.Module:
    """A tiny GAVN moved off its identity init, as training would."""
    torch.manual_seed(seed)
    spec = dict(TINY_GAVN)
    model = build(spec.pop("type"), **spec)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.02 * torch.randn_like(p))
    return model


@pytest.fixture(scope="module")
def weights_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("weights")
    for seed, name in enumerate(NETWORKS):
        save_model(_tiny(seed), folder / f"{name}.safetensors", TINY_GAVN, {"task": "deblur"})
    landmarks = folder / "landmark-net.safetensors"
    save_model(build("landmark-net"), landmarks, {"type": "landmark-net"})
    return folder


def _args(data: Path, weights: Path, out: Path) -> list[str]:
    args = ["leaderboard", "--data", str(data), "--tasks", "deblur", "--clips", SPLIT]
    args += ["--max-frames", str(FRAMES), "--every", str(EVERY)]
    return [*args, "--out", str(out / "board.md"), "--weights-dir", str(weights)]


@pytest.fixture(scope="module")
def board(data: Path, weights_dir: Path, tmp_path_factory, one_thread) -> Path:
    """The folder of one run: board.md, board.json and the pictures."""
    out = tmp_path_factory.mktemp("board")
    result = CliRunner().invoke(app, _args(data, weights_dir, out))
    assert result.exit_code == 0, (result.output, result.exception)
    return out


def _table(page: str) -> dict[str, dict[str, str]]:
    """Method → column header → cell text (bold marks removed)."""
    lines = [line for line in page.splitlines() if line.startswith("| ")]
    header = [c.strip() for c in lines[0].strip("|").split("|")]
    rows = {}
    for line in lines[1:]:
        cells = [c.strip().strip("*") for c in line.strip("|").split("|")]
        rows[cells[0]] = dict(zip(header, cells, strict=True))
    return rows


def _entries(board: Path) -> dict[str, dict]:
    """Cache entries by file name (``None`` for the input)."""
    doc = json.loads((board / "board.json").read_text())
    return {e["weights"]: e for e in doc["entries"]}


def test_page_has_evaluates_results_for_every_method(
    board: Path, data: Path, weights_dir: Path, one_thread
) -> None:
    page = (board / "board.md").read_text()
    paths = [str(weights_dir / f"{n}.safetensors") for n in NETWORKS]
    expected = evaluate(
        data,
        "deblur",
        LEVELS["deblur"],
        ["input", *paths],
        split=SPLIT,
        max_frames=FRAMES,
        every=EVERY,
    ).results["models"]
    rows = _table(page)
    assert list(rows) == ["input", *NETWORKS]  # no landmark-net
    entries = _entries(board)
    for label, name in zip(
        ["input", *NETWORKS], [None, *(f"{n}.safetensors" for n in NETWORKS)], strict=True
    ):
        want = expected[label]
        for c in COLUMNS:
            if c.key == "seconds" or want[c.key] is None:
                continue  # wall time differs from run to run
            assert rows[label][c.header] == c.cell(want[c.key]), (label, c.key)
            assert entries[name]["scores"][c.key] == pytest.approx(want[c.key], abs=1e-12)
        assert float(rows[label]["s/frame ↓"]) >= 0
    cost = measure(_tiny(0), 224)
    assert rows["tiny-a"]["Params (M) ↓"] == f"{cost.params / 1e6:.2f}"
    assert rows["tiny-a"]["GMACs/frame at 224² ↓"] == f"{cost.gmacs_per_frame:.2f}"
    assert rows["input"]["Params (M) ↓"] == rows["input"]["GMACs/frame at 224² ↓"] == "–"
    assert "avrestore leaderboard --data" in page and "--tasks deblur" in page
    assert "torch" in page and "(sha256 `" in page


def test_pictures_have_the_expected_sizes(board: Path) -> None:
    grid = cv2.imread(str(board / "board-deblur.png"))
    tiles = len(NETWORKS) + 2  # input, the networks, HQ
    assert grid.shape[0] > PREPARED_SIZE
    assert grid.shape[1] == tiles * PREPARED_SIZE + (tiles - 1) * 6
    plot = cv2.imread(str(board / "board-speed.png"))
    assert plot.shape == (HEIGHT, WIDTH, 3)
    page = (board / "board.md").read_text()
    assert "](board-deblur.png)" in page and "](board-speed.png)" in page


def test_a_rerun_takes_every_result_from_the_cache(
    board: Path, data: Path, weights_dir: Path, tmp_path: Path, monkeypatch
) -> None:
    shutil.copy(board / "board.json", tmp_path / "board.json")

    def refuse(*args, **kwargs):
        raise AssertionError("evaluated again")

    monkeypatch.setattr("avrestore.leaderboard.run.evaluate", refuse)
    result = CliRunner().invoke(app, _args(data, weights_dir, tmp_path))
    assert result.exit_code == 0, (result.output, result.exception)
    assert _table((tmp_path / "board.md").read_text()) == _table((board / "board.md").read_text())
    again = cv2.imread(str(tmp_path / "board-deblur.png"))
    assert (again == cv2.imread(str(board / "board-deblur.png"))).all()


def test_a_removed_checkpoint_leaves_and_a_changed_one_is_evaluated_again(
    board: Path, data: Path, weights_dir: Path, tmp_path: Path, monkeypatch, one_thread
) -> None:
    weights = tmp_path / "weights"
    shutil.copytree(weights_dir, weights)
    (weights / "tiny-b.safetensors").unlink()
    changed = weights / "tiny-a.safetensors"
    save_model(_tiny(7), changed, TINY_GAVN, {"task": "deblur"})
    out = tmp_path / "out"
    out.mkdir()
    shutil.copy(board / "board.json", out / "board.json")
    calls = []

    def recording(data, task, level, models, **kwargs):
        calls.append(list(models))
        return evaluate(data, task, level, models, **kwargs)

    monkeypatch.setattr("avrestore.leaderboard.run.evaluate", recording)
    result = CliRunner().invoke(app, _args(data, weights, out))
    assert result.exit_code == 0, (result.output, result.exception)
    assert calls == [[str(changed)]]
    assert list(_table((out / "board.md").read_text())) == ["input", "tiny-a"]
    methods = [e["key"]["method"] for e in _entries(out).values()]
    assert sorted(methods) == sorted(["input", f"sha256:{sha256_file(changed)}"])


# A tiny TS-VQGAN (five levels, factor 16 as the real one), its codebook spread as a trained one.
TINY_VQGAN = {"type": "ts-vqgan-small", "ch": 8, "ch_mult": [1, 1, 2, 2, 2], "z_dim": 8}


def _ceiling_line(page: str) -> list[str]:
    line = next(x for x in page.splitlines() if x.startswith("| prior |"))
    return [c.strip() for c in line.strip("|").split("|")]


def test_a_vq_autoencoders_ceiling_is_its_reconstruction_of_the_clean_frames(
    board: Path, data: Path, weights_dir: Path, tmp_path: Path, monkeypatch, one_thread
) -> None:
    torch.manual_seed(0)
    spec = dict(TINY_VQGAN)
    vqgan = build(spec.pop("type"), **spec, n_codes=16)
    with torch.no_grad():
        vqgan.quantizer.codebook.normal_()
    prior = tmp_path / "prior.safetensors"
    save_model(vqgan, prior, {**TINY_VQGAN, "n_codes": 16})
    shutil.copy(board / "board.json", tmp_path / "board.json")  # the boards come from the cache
    args = [*_args(data, weights_dir, tmp_path), "--ceiling", str(prior)]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, (result.output, result.exception)
    page = (tmp_path / "board.md").read_text()
    # The PSNR the page shows is that of the clean frames encoded, quantised and decoded.
    model = load_model(prior)
    clip_set = select_clips(data, SPLIT, FRAMES)
    scores, codes = [], []
    for folder in clip_set.folders:
        hq = clip_frames(folder, clip_set.cache)[:FRAMES]
        x = torch.from_numpy(np.array(hq)).permute(0, 3, 1, 2).float() / 255
        x = torch.cat([x, x[-1:].expand(-len(x) % 3, -1, -1, -1)]).unflatten(0, (-1, 3))
        with torch.no_grad():
            k = torch.cat([model.codes(c[None]) for c in x], 1)
            out = torch.cat(
                [model.decode(model.embed(k[:, i : i + 3]))[0][0] for i in range(0, k.shape[1], 3)]
            )
        recon = (out[: len(hq)].clamp(0, 1).permute(0, 2, 3, 1).numpy() * 255).round()
        scores += [psnr(r.astype(np.uint8), h) for r, h in zip(recon, hq, strict=True)]
        codes.append(k.flatten())
    cells = _ceiling_line(page)
    assert cells[1] == f"{np.mean(scores):.2f}"
    assert cells[4] == f"{len(torch.cat(codes).unique()) / 16:.1%} of 16"
    assert "## Ceilings of the codebook priors" in page and f"--ceiling {prior}" in page
    assert _table(page.split("## Ceilings")[0]) == _table((board / "board.md").read_text())

    # A rerun takes the ceiling from the cache too.
    def refuse(*args, **kwargs):
        raise AssertionError("reconstructed again")

    monkeypatch.setattr("avrestore.leaderboard.run.codebook_ceiling", refuse)
    again = tmp_path / "again"
    again.mkdir()
    shutil.copy(tmp_path / "board.json", again / "board.json")
    args = [*_args(data, weights_dir, again), "--ceiling", str(prior)]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, (result.output, result.exception)
    assert _ceiling_line((again / "board.md").read_text()) == cells

    # A restorer is no VQ autoencoder: one line, exit 2, before anything is evaluated.
    bad = tmp_path / "bad"
    bad.mkdir()
    r = run_cli(*_args(data, weights_dir, bad), "--ceiling", weights_dir / "tiny-a.safetensors")
    assert r.returncode == 2 and r.stderr.count("\n") == 1, r.stderr
    assert "is no VQ autoencoder" in r.stderr and list(bad.iterdir()) == []


def test_axes_enclose_the_values_with_readable_ticks() -> None:
    assert _log_axis([0.03, 0.04]) == pytest.approx([0.01, 0.02, 0.05, 0.1])
    assert _log_axis([0.002, 3.0])[0] == pytest.approx(0.001)
    assert _log_axis([0.002, 3.0])[-1] == pytest.approx(10.0)
    ticks = _linear_axis([0.0, 2.4, -0.6])
    assert ticks[0] <= -0.6 and ticks[-1] >= 2.4 and 4 <= len(ticks) <= 9


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"--data": "none"}, "data folder does not exist"),
        ({"--data": "weights"}, "not a prepared folder"),
        ({"--tasks": "denoise"}, "--tasks takes names of car, deblur, sr"),
        ({"--tasks": "car"}, "no checkpoint for task car"),
        ({"--clips": "dev"}, "--clips must be one of"),
        ({"--max-frames": "0"}, "--max-frames must be at least 1"),
    ],
)
def test_bad_input_is_one_line_and_exit_code_2(
    data: Path, weights_dir: Path, tmp_path: Path, change: dict, message: str
) -> None:
    args = _args(data, weights_dir, tmp_path)
    for option, value in change.items():
        if option == "--data":
            value = str(weights_dir if value == "weights" else tmp_path / value)
        args[args.index(option) + 1] = value
    r = run_cli(*args)
    assert r.returncode == 2, r.stderr
    assert r.stderr.startswith("avrestore: error:") and r.stderr.count("\n") == 1, r.stderr
    assert message in r.stderr
    assert list(tmp_path.iterdir()) == []


def test_a_json_that_is_no_cache_is_not_overwritten(
    data: Path, weights_dir: Path, tmp_path: Path
) -> None:
    other = tmp_path / "results.json"
    other.write_text('{"psnr": 30}\n')
    r = run_cli(*_args(data, weights_dir, tmp_path), "--cache-json", other)
    assert r.returncode == 2 and "is not a leaderboard cache" in r.stderr, r.stderr
    assert other.read_text() == '{"psnr": 30}\n'
    assert sorted(p.name for p in tmp_path.iterdir()) == ["results.json"]


def test_a_clip_prepared_again_alike_keeps_its_digest_and_a_moved_box_changes_it(
    data: Path, tmp_path: Path
) -> None:
    folder = next(p for p in (data / "clips").iterdir() if (p / "meta.json").is_file())
    again = tmp_path / folder.name
    shutil.copytree(folder, again)
    assert clip_digest(again) == clip_digest(folder)
    meta = json.loads((again / "meta.json").read_text())
    meta["seconds"] += 12.5  # another machine's preparing time
    (again / "meta.json").write_text(json.dumps(meta))
    assert clip_digest(again) == clip_digest(folder)
    boxes = np.load(again / "boxes.npy")
    np.save(again / "boxes.npy", boxes + 1)  # one pixel: other crops
    assert clip_digest(again) != clip_digest(folder)
    np.save(again / "boxes.npy", boxes)
    meta["fps"] = 30.0
    (again / "meta.json").write_text(json.dumps(meta))
    assert clip_digest(again) != clip_digest(folder)
