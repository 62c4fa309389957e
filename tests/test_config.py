"""The experiment-config schema: every shipped config parses, and each kind of mistake is one
clear line (nearest valid key, type, range, allowed values, model arguments) before any run
folder, dataset or model is made."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from conftest import REPO, run_cli

from avrestore.errors import InputError
from avrestore.models.registry import REGISTRY
from avrestore.train.config import load_config
from avrestore.train.schema import ExperimentConfig, config_dict, parse_config

CONFIGS = sorted((REPO / "configs").glob("*.yaml"))
BASE = REPO / "configs" / "gavn-small-car.yaml"

MODELS = ", ".join(REGISTRY)  # the registered names, in the schema's order


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.stem)
def test_every_shipped_config_parses_and_reads_back_from_its_run_record(path: Path) -> None:
    cfg = load_config(path)
    assert isinstance(cfg, ExperimentConfig) and cfg.train.stages
    # config.yaml in the run folder is config_dict's output: plain YAML that parses the same.
    assert parse_config(yaml.safe_load(yaml.safe_dump(config_dict(cfg)))) == cfg


def test_overrides_reach_the_typed_config() -> None:
    cfg = load_config(BASE, ["train.stages.0.epochs=2", "data.compress_at=[crop,source]", "seed=3"])
    assert cfg.train.stages[0].epochs == 2
    assert cfg.data.compress_at == ("crop", "source")
    assert cfg.seed == 3
    assert cfg.train.stages[1].freeze == ("temporal.",)
    assert cfg.stage_model(cfg.train.stages[0]) == {"type": "gavn-small", "use_identity": False}


def test_absent_keys_take_their_defaults() -> None:
    raw = {
        "task": "sr",
        "model": {"type": "gavn-small"},
        "data": {"root": "x"},
        "train": {"batch_size": 1, "stages": [{"epochs": 1, "lr": "1e-4"}]},
    }
    cfg = parse_config(raw)
    assert (cfg.seed, cfg.objective, cfg.device, cfg.data.patch) == (0, "restoration", "auto", 128)
    assert cfg.train.stages[0].name == "stage0"
    assert cfg.train.stages[0].lr == 1e-4  # PyYAML reads 1e-4 (no dot) as a string


BAD = [
    ("trian.batch_size=2", "unknown config key 'trian'; did you mean 'train'?"),
    (
        "train.num_worker=8",
        "unknown config key 'train.num_worker'; did you mean 'train.num_workers'?",
    ),
    (
        "train.stages.0.epoch=2",
        "unknown config key 'train.stages.0.epoch'; did you mean 'train.stages.0.epochs'?",
    ),
    (
        "data.levels={blurr: [21, 21]}",
        "unknown config key 'data.levels.blurr'; did you mean 'data.levels.blur'?",
    ),
    ("train.batch_size=abc", "train.batch_size must be an integer, got 'abc'"),
    ("train.batch_size=true", "train.batch_size must be an integer, got True"),
    ("train.batch_size=2.5", "train.batch_size must be an integer, got 2.5"),
    ("train.batch_size=0", "train.batch_size must be >= 1, got 0"),
    ("train.iters_per_epoch=0", "train.iters_per_epoch must be >= 1, got 0"),
    ("train.num_workers=-1", "train.num_workers must be >= 0, got -1"),
    ("train.stages.0.epochs=0", "train.stages.0.epochs must be >= 1, got 0"),
    ("train.stages.0.lr=-1e-4", "train.stages.0.lr must be >= 0, got -0.0001"),
    ("train.stages.0.lr=fast", "train.stages.0.lr must be a number, got 'fast'"),
    ("train.stages.0.freeze=temporal.", "train.stages.0.freeze must be a list, got 'temporal.'"),
    ("train.stages=[]", "train.stages must list at least one stage"),
    ("train.validate=1", "train.validate must be true or false, got 1"),
    ("data.patch=4", "data.patch must be >= 8, got 4"),
    (
        "data.levels={blur: [25, 15]}",
        "data.levels.blur must be [low, high] with low <= high, got [25, 15]",
    ),
    ("data.levels={blur: [21]}", "data.levels.blur must be [low, high], got [21]"),
    ("data.levels={crf: [40, x]}", "data.levels.crf.1 must be an integer, got 'x'"),
    ("train.precision=fp16", "train.precision must be one of fp32, bf16, got 'fp16'"),
    ("train.loss=l2", "train.loss must be one of charbonnier, l1, got 'l2'"),
    (
        "train.stages.2.schedule=step",
        "train.stages.2.schedule must be one of constant, cosine, got 'step'",
    ),
    ("task=denoise", "task must be one of car, deblur, sr, mixed, got 'denoise'"),
    (
        "objective=gan",
        "objective must be one of restoration, landmarks, autoencoder, vq-codes, vq-full, "
        "flow, got 'gan'",
    ),
    (
        "train.stages.0.objective=vq",
        "train.stages.0.objective must be one of restoration, landmarks, autoencoder, "
        "vq-codes, vq-full, flow, got 'vq'",
    ),
    ("device=gpu", "device must be one of auto, cpu, cuda, got 'gpu'"),
    (
        "model.type=gavn-huge",
        f"model.type must be one of {MODELS}, got 'gavn-huge'",
    ),
    (
        "data.compress_at=[crop,sauce]",
        "data.compress_at.1 must be one of crop, source, got 'sauce'",
    ),
    (
        "model.use_audoi=false",
        "unknown gavn-small argument 'model.use_audoi'; did you mean 'model.use_audio'?",
    ),
    (
        "train.stages.0.model.use_identiy=false",
        "unknown gavn-small argument 'train.stages.0.model.use_identiy'; "
        "did you mean 'train.stages.0.model.use_identity'?",
    ),
    (
        "train.stages.1.model={type: landmark-net, channels: 8}",
        "unknown landmark-net argument 'train.stages.1.model.channels'; "
        "valid: use_audio, audio_window, n_mfcc, audio_dim, audio_dropout",
    ),
    (
        "train.stages.1.model={type: gavn-huge}",
        f"train.stages.1.model.type must be one of {MODELS}, got 'gavn-huge'",
    ),
    ("train.batch_size=null", "train.batch_size must be an integer, got None"),
    ("data.root=null", "data.root must be a string, got None"),
    ("model=null", "model must be a mapping of names to values, got None"),
    ("model={use_audio: false}", "config needs model.type (a registered model name)"),
    (
        "train.stages.0.lr=[",
        "override 'train.stages.0.lr=[': expected the node content, but found '<stream end>' "
        "(line 1, column 2)",
    ),
]


@pytest.mark.parametrize(("override", "message"), BAD, ids=[b[0] for b in BAD])
def test_each_mistake_is_one_input_error_line(override: str, message: str) -> None:
    with pytest.raises(InputError) as e:
        load_config(BASE, [override])
    assert str(e.value) == message


def test_the_restoration_loss_is_charbonnier_or_l1() -> None:
    assert load_config(BASE).train.loss == "charbonnier"  # the default: GAVN's
    assert load_config(BASE, ["train.loss=l1"]).train.loss == "l1"  # DAVD-Net's
    davd = load_config(REPO / "configs" / "davd-net-small-car.yaml")
    assert davd.train.loss == "l1" and davd.data.compress_at == ("crop",)
    landmarks = REPO / "configs" / "landmark-net.yaml"
    with pytest.raises(InputError, match=r"train\.loss l1 is for the restoration objective"):
        load_config(landmarks, ["train.loss=l1"])
    with pytest.raises(InputError, match=r"l1 is for the restoration objective; vq-full has"):
        load_config(BASE, ["train.loss=l1", "train.stages.2.objective=vq-full"])  # one stage's


def test_a_missing_section_or_key_is_named() -> None:
    raw = yaml.safe_load(BASE.read_text())
    for section, key in (("data", "root"), ("train", "batch_size")):
        broken = {**raw, section: {k: v for k, v in raw[section].items() if k != key}}
        with pytest.raises(InputError, match=rf"^config needs {section}\.{key}$"):
            parse_config(broken)
    with pytest.raises(InputError, match=r"^config needs task$"):
        parse_config({k: v for k, v in raw.items() if k != "task"})


YAML_FILES = [
    ("a: [1,\n b: 2\n", "expected ',' or ']', but got '<stream end>' (line 3, column 1)"),
    (
        "x: !!python/object:os.system {}\n",
        "could not determine a constructor for the tag "
        "'tag:yaml.org,2002:python/object:os.system' (line 1, column 4)",
    ),
    ("- 1\n- 2\n", "must be a mapping at the top level"),
]


@pytest.mark.parametrize(("text", "message"), YAML_FILES, ids=["malformed", "tag", "list"])
def test_bad_yaml_is_one_line(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(InputError) as e:
        load_config(path)
    assert str(e.value).startswith(f"config {path} ")
    assert str(e.value).endswith(message) and "\n" not in str(e.value)


CLI_CASES = [
    (["trian.batch_size=2"], "unknown config key 'trian'; did you mean 'train'?"),
    (["train.batch_size=abc"], "train.batch_size must be an integer, got 'abc'"),
]


@pytest.mark.parametrize(("overrides", "message"), CLI_CASES, ids=[c[0][0] for c in CLI_CASES])
def test_the_cli_prints_one_line_exits_2_and_makes_no_run_folder(
    tmp_path: Path, overrides: list[str], message: str
) -> None:
    run = tmp_path / "run"
    done = run_cli("train", BASE, *overrides, "--run-dir", run)
    assert done.returncode == 2
    assert done.stderr.splitlines() == [f"avrestore: error: {message}"]
    assert not run.exists()


def test_the_cli_refuses_a_python_tag_in_one_line(tmp_path: Path) -> None:
    bad, run = tmp_path / "bad.yaml", tmp_path / "run"
    bad.write_text(BASE.read_text() + "extra: !!python/object/apply:os.system [echo hi]\n")
    done = run_cli("train", bad, "--run-dir", run)
    assert done.returncode == 2 and len(done.stderr.splitlines()) == 1
    assert "could not determine a constructor" in done.stderr and "hi" not in done.stdout
    assert not run.exists()
