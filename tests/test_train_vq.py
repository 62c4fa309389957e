"""Training the VQ restorer through ``avrestore train``: its TS-VQGAN as an autoencoder (warm-up,
then quantised from a k-means codebook), then the restorer's code stage and full stage on top of
the frozen TS-VQGAN; the MFCC windows the dataset cuts for each model's contract; one line for
a patch off the model's grid or a stage that would train the frozen TS-VQGAN."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from avrestore.audio import audio_windows
from avrestore.errors import InputError
from avrestore.media.audio import read_audio
from avrestore.models.registry import build
from avrestore.models.ts_vqgan import TSVQGAN
from avrestore.models.vq_restorer import VQRestorer
from avrestore.models.weights import load_model, read_metadata, save_model
from avrestore.train.data import build_datasets, stage_contracts
from avrestore.train.loop import train
from avrestore.train.objectives import Autoencoder
from avrestore.train.schema import parse_config

pytestmark = pytest.mark.usefixtures("one_thread")

# Five levels (factor 16, as the real ones), a few thousand parameters; k-means after two steps
# of 2 clips x 3 frames x 2 x 2 codes (24 vectors a step).
TINY_VQGAN = {"ch": 8, "ch_mult": [1, 1, 2, 2, 2], "z_dim": 8, "n_codes": 16, "kmeans_vectors": 40}
TINY_RESTORER = {"vqgan": TINY_VQGAN, "feature_dim": 8, "cnn_channels": 8, "fidelity_channels": 4}


def _config(root: Path, model: dict, objective: str, stages: list[dict], **data: object) -> dict:
    """A few steps of batch 2 on 32² patches of the shared prepared clips, CRF 45 at the crop
    and at the source (the VQ restorer's task), validated on one whole 96² window."""
    return {
        "seed": 0,
        "task": "car",
        "objective": objective,
        "device": "cpu",
        "model": model,
        "data": {
            "root": str(root),
            "n": 1,
            "patch": 32,
            "val_patch": None,
            "compress_at": ["crop", "source"],
            **data,
        },
        "train": {"batch_size": 2, "iters_per_epoch": 3, "val_items": 1, "stages": stages},
    }


@pytest.fixture(scope="module")
def vqgan_run(
    prepared_root: Path, tmp_path_factory: pytest.TempPathFactory, one_thread: None
) -> Iterator[dict]:
    """A tiny ts-vqgan-small trained 3 steps as a plain autoencoder, then 3 quantised steps:
    its weights file, each training step's losses and each validation's scores."""
    steps: list[dict] = []
    scores: list[dict] = []
    losses, score = TSVQGAN.losses, Autoencoder.scores

    def spy_losses(self: TSVQGAN, frames: torch.Tensor) -> dict:
        terms = losses(self, frames)
        initialised = bool(self.quantizer.initialised)
        steps.append({"quantize": self.quantize, "initialised": initialised} | terms)
        return terms

    def spy_scores(self: Autoencoder, *args: object) -> dict:
        scores.append(score(self, *args))
        return scores[-1]

    stages = [
        {"name": "warmup", "epochs": 1, "lr": 1e-3, "model": {"quantize": False}},
        {"name": "vq", "epochs": 1, "lr": 1e-3, "model": {"quantize": True}},
    ]
    cfg = _config(prepared_root, {"type": "ts-vqgan-small", **TINY_VQGAN}, "autoencoder", stages)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(TSVQGAN, "losses", spy_losses)
        patch.setattr(Autoencoder, "scores", spy_scores)
        final = train(cfg, tmp_path_factory.mktemp("vqgan") / "run")
    yield {"weights": final, "steps": steps, "scores": scores}


def test_the_ts_vqgan_warms_up_then_quantises_from_a_k_means_codebook(vqgan_run: dict) -> None:
    steps, scores = vqgan_run["steps"], vqgan_run["scores"]
    assert [s["quantize"] for s in steps] == [False] * 3 + [True] * 3
    assert all(torch.isfinite(s["total"]) for s in steps)
    # The warm-up is a plain autoencoder; the quantised stage collects the encoder outputs of
    # its first two batches (48 >= 40 vectors), sets the codebook by k-means and quantises.
    assert all(s["commitment"] == 0 and not s["initialised"] for s in steps[:4])
    assert steps[4]["initialised"] and steps[5]["commitment"] > 0
    assert 1 <= steps[5]["perplexity"] <= 16
    # Validation: reconstruction PSNR after the warm-up, and codebook statistics once quantised.
    assert set(scores[0]) == {"psnr"} and set(scores[1]) == {"psnr", "perplexity", "usage"}
    assert 5 < scores[1]["psnr"] < 60 and 0 < scores[1]["usage"] <= 1
    weights = vqgan_run["weights"]
    spec = json.loads(read_metadata(weights)["model"])
    assert spec == {"type": "ts-vqgan-small", **TINY_VQGAN, "quantize": True, "crop_size": 96}
    assert load_file(str(weights))["quantizer.initialised"].item() == 1


def test_the_vq_restorer_trains_codes_then_full_with_its_ts_vqgan_frozen(
    vqgan_run: dict, prepared_root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    vqgan_file = tmp_path / "vqgan.safetensors"
    shutil.copy(vqgan_run["weights"], vqgan_file)
    model = {"type": "vq-restorer-small", **TINY_RESTORER, "vqgan_weights": str(vqgan_file)}
    torch.manual_seed(3)
    start = build("vq-restorer-small", **TINY_RESTORER, vqgan_weights=str(vqgan_file))
    save_model(start, tmp_path / "start.safetensors", {"type": "vq-restorer-small"})
    stages = [
        {
            "name": "codes",
            "epochs": 1,
            "lr": 1e-3,
            "freeze": ["vqgan"],
            "init": str(tmp_path / "start.safetensors"),
        },
        {"name": "full", "epochs": 1, "lr": 1e-3, "freeze": ["vqgan"], "objective": "vq-full"},
    ]
    seen: list[tuple[str, bool, float]] = []
    losses = VQRestorer.losses

    def spy(self: VQRestorer, *args: object, stage: str = "full", **kw: object) -> dict:
        terms = losses(self, *args, stage=stage, **kw)
        seen.append((stage, self.training, float(terms["total"].detach())))
        return terms

    monkeypatch.setattr(VQRestorer, "losses", spy)
    final = train(_config(prepared_root, model, "vq-codes", stages), tmp_path / "run")
    # 3 code steps, validation (code accuracy, eval mode), 3 full steps, validation.
    assert [(s, t) for s, t, _ in seen] == [
        *[("codes", True)] * 3,
        ("codes", False),
        *[("full", True)] * 3,
        ("codes", False),
    ]
    assert all(np.isfinite(total) for *_, total in seen)
    got, before = load_file(str(final)), start.state_dict()
    vqgan = load_file(str(vqgan_file))
    assert {k for k in got if k.startswith("vqgan.")} == {f"vqgan.{k}" for k in vqgan}
    for k, v in vqgan.items():  # frozen: bit-identical to the pretrained file
        torch.testing.assert_close(got[f"vqgan.{k}"], v, rtol=0, atol=0, msg=k)
    for k in ("predictor.classifier.weight", "hog_encoder.conv1.weight", "audio_proj.linear.bias"):
        assert not torch.equal(got[k], before[k]), k  # the predictor trained
    # The fidelity modulation starts as the identity (α weights 0) and trains in the full stage.
    assert not before["fidelity.4.alpha.weight"].any() and got["fidelity.4.alpha.weight"].any()
    # The weights file holds everything: its spec names no TS-VQGAN file, and it loads (and
    # restores) with that file gone.
    spec = json.loads(read_metadata(final)["model"])
    assert "vqgan_weights" not in spec and spec["crop_size"] == 96
    vqgan_file.unlink()
    again = load_model(final)
    for k, v in again.state_dict().items():
        torch.testing.assert_close(v, got[k], rtol=0, atol=0, msg=k)
    with torch.no_grad():
        out = again(**again.dummy_inputs(32, 32))
    assert out.shape == (1, 3, 3, 32, 32) and torch.isfinite(out).all()


def test_dataset_audio_is_what_the_model_contract_reads(prepared_root: Path) -> None:
    def first_item(model: dict) -> dict:
        stages = [{"epochs": 1, "lr": 0.0, "freeze": ["vqgan"]}]
        cfg = parse_config(_config(prepared_root, model, "restoration", stages))
        train_set, _ = build_datasets(cfg, stage_contracts(cfg))
        return train_set[(0, 0)]  # GRID, frames 0..6, the restored ones 2..4

    clip = prepared_root / "clips" / "grid_bbaf2n"
    meta = json.loads((clip / "meta.json").read_text())
    speech = read_audio(clip / "audio.wav", rate=16000)
    assert speech is not None

    def windows(width: int, n_mfcc: int) -> torch.Tensor:
        every = audio_windows(speech.mono, 16000, meta["frames"], meta["fps"], width, n_mfcc)
        return torch.from_numpy(every[2:5])

    vq = first_item({"type": "vq-restorer-small", **TINY_RESTORER})
    assert vq["has_audio"] and vq["audio"].shape == (3, 21, 80)  # M_i: 5 steps cut inside
    torch.testing.assert_close(vq["audio"], windows(21, 80), rtol=0, atol=0)
    gavn = first_item({"type": "gavn-small"})
    assert gavn["audio"].shape == (3, 21, 13)
    torch.testing.assert_close(gavn["audio"], windows(21, 13), rtol=0, atol=0)
    # A model without audio keeps the default windows (unused).
    silent = first_item({"type": "vq-restorer-small", **TINY_RESTORER, "use_audio": False})
    torch.testing.assert_close(silent["audio"], gavn["audio"], rtol=0, atol=0)


MISFITS = [
    (
        "ts-vqgan-small",
        {"patch": 36},
        ["encoder"],  # freezing part of it is allowed
        "ts-vqgan-small trains on frames whose sides are multiples of 8, not data.patch 36",
    ),
    (
        "ts-vqgan-small",
        {"val_patch": 36},
        [],
        "ts-vqgan-small trains on frames whose sides are multiples of 8, not data.val_patch 36",
    ),
    (
        "vq-restorer-small",
        {},
        ["vqgan.encoder"],
        "train.stages.0.freeze must include 'vqgan': vq-restorer-small never trains that "
        "pretrained part",
    ),
]


@pytest.mark.parametrize(
    ("model", "data", "freeze", "message"), MISFITS, ids=["patch", "val_patch", "freeze"]
)
def test_a_misfit_is_one_input_error_line_before_any_data(
    prepared_root: Path, tmp_path: Path, model: str, data: dict, freeze: list, message: str
) -> None:
    objective = "autoencoder" if model == "ts-vqgan-small" else "vq-codes"
    stage = {"epochs": 1, "lr": 1e-4, "freeze": freeze}
    cfg = _config(prepared_root, {"type": model}, objective, [stage], **data)
    with pytest.raises(InputError) as e:
        train(cfg, tmp_path / "run")
    assert str(e.value) == message
    assert not (tmp_path / "run").exists()
