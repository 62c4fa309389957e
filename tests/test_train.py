"""Training: config overrides, the staged plan, the resumable sampler, resume after kill -9
equal to an uninterrupted run, and two-process DistributedDataParallel on the CPU (gloo)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import yaml
from safetensors.torch import load_file

from avrestore.errors import InputError
from avrestore.models.davd_net import DAVDNet
from avrestore.models.registry import build
from avrestore.models.weights import read_metadata, save_model
from avrestore.train.checkpoint import load_state
from avrestore.train.config import apply_overrides
from avrestore.train.loop import train
from avrestore.train.optim import optimiser_for
from avrestore.train.plan import Position, locate, stage_start
from avrestore.train.sampler import EpochSampler
from avrestore.train.schema import parse_stages


def test_overrides_set_nested_keys_list_items_and_yaml_types() -> None:
    cfg = {"train": {"stages": [{"epochs": 2}, {"epochs": 3}]}, "model": {"type": "a"}}
    out = apply_overrides(cfg, ["train.stages.1.epochs=7", "model.use_audio=false", "seed=3"])
    assert out["train"]["stages"][1]["epochs"] == 7
    assert out["model"]["use_audio"] is False and out["seed"] == 3
    assert cfg["train"]["stages"][1]["epochs"] == 3  # the original is left alone


@pytest.mark.parametrize("bad", ["novalue", "train.stages.9.epochs=1", "model.type.x=1"])
def test_bad_overrides_are_input_errors(bad: str) -> None:
    with pytest.raises(InputError):
        apply_overrides({"train": {"stages": [{}]}, "model": {"type": "a"}}, [bad])


def test_plan_locates_every_step_in_its_stage_epoch_and_batch() -> None:
    stages = parse_stages([{"epochs": 2, "lr": 1}, {"epochs": 1, "lr": 1}, {"epochs": 3, "lr": 1}])
    assert locate(0, stages, 5) == Position(0, 0, 0)
    assert locate(9, stages, 5) == Position(0, 1, 4)
    assert locate(10, stages, 5) == Position(1, 0, 0)
    assert locate(17, stages, 5) == Position(2, 0, 2)
    assert stage_start(2, stages, 5) == 15
    with pytest.raises(InputError):
        parse_stages([{"epochs": 1}])


def test_stages_keep_their_learning_rate_unless_they_ask_for_cosine_decay() -> None:
    constant, cosine = parse_stages(
        [{"epochs": 1, "lr": 4e-4}, {"epochs": 1, "lr": 4e-4, "schedule": "cosine", "min_lr": 1e-5}]
    )
    assert constant.schedule == "constant"  # the paper's: one rate per stage
    model = torch.nn.Linear(2, 2)
    for stage, last in ((constant, 4e-4), (cosine, 1e-5)):
        opt, sched = optimiser_for(model, stage, steps=10)
        for _ in range(10):
            opt.step()
            sched.step()
        assert sched.get_last_lr()[0] == pytest.approx(last)
    with pytest.raises(InputError, match="schedule must be one of"):
        parse_stages([{"epochs": 1, "lr": 1, "schedule": "step"}])


@pytest.mark.parametrize("content", [b"", b"\x80\x04K\x01.", b"truncated zip PK\x03\x04"])
def test_a_damaged_or_foreign_training_state_is_one_input_error(
    tmp_path: Path, content: bytes, recwarn: pytest.WarningsRecorder
) -> None:
    (tmp_path / "state.pt").write_bytes(content)  # empty, a pickle of 1, a torn file
    with pytest.raises(InputError, match=r"cannot resume from .*state\.pt") as raised:
        load_state(tmp_path)
    assert not recwarn.list  # torch's own warning about the pickle would be a second line
    assert "\n" not in str(raised.value) and len(str(raised.value)) < 300


def test_sampler_is_seeded_resumable_and_split_across_ranks() -> None:
    full = list(EpochSampler(10, batch=2, steps=7, seed=1, epoch=3))
    assert full == list(EpochSampler(10, batch=2, steps=7, seed=1, epoch=3))
    assert full != list(EpochSampler(10, batch=2, steps=7, seed=1, epoch=4))
    assert list(EpochSampler(10, batch=2, steps=7, seed=1, epoch=3, skip=4)) == full[8:]
    assert len(full) == 14  # more items than the set holds: the permutation repeats
    ranks = [list(EpochSampler(10, 2, 3, 1, 0, rank=r, world=2)) for r in (0, 1)]
    assert len(ranks[0]) == len(ranks[1]) == 6
    assert set(ranks[0]).isdisjoint(ranks[1])


@pytest.fixture()
def tiny_config(prepared_root: Path, tmp_path: Path, tiny_gavn_spec: dict) -> Path:
    """A 3-stage GAVN schedule of 36 small steps on the shared prepared clips."""
    cfg = {
        "name": "tiny",
        "seed": 0,
        "task": "deblur",  # x264 is not bit-exact across runs on some CPUs; blur is
        "device": "cpu",
        "model": tiny_gavn_spec,
        "data": {"root": str(prepared_root), "n": 1, "patch": 32, "val_patch": 32},
        "train": {
            "batch_size": 2,
            "iters_per_epoch": 4,
            "checkpoint_every": 1,
            "val_items": 1,
            "stages": [
                {"name": "temporal", "epochs": 3, "lr": 4e-4, "model": {"use_identity": False}},
                {"name": "warmup", "epochs": 3, "lr": 4e-4, "freeze": ["temporal."]},
                {"name": "joint", "epochs": 3, "lr": 2e-4},
            ],
        },
    }
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def _train(
    config: Path, run: Path, *extra: str, launcher: list[str] | None = None
) -> subprocess.Popen:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [*(launcher or [sys.executable, "-m"]), "avrestore", "train", str(config)]
    return subprocess.Popen(
        [*cmd, "--run-dir", str(run), *extra],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _finish(proc: subprocess.Popen) -> None:
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err[-2000:]


def _latest_step(run: Path) -> int:
    pointer = run / "checkpoints" / "latest"
    return int(pointer.read_text().strip().split("_")[1]) if pointer.is_file() else 0


def test_resume_after_kill_gives_the_uninterrupted_result(
    tiny_config: Path, tmp_path: Path
) -> None:
    whole, killed = tmp_path / "whole", tmp_path / "killed"
    _finish(_train(tiny_config, whole))
    proc = _train(tiny_config, killed)
    deadline = time.time() + 240
    while _latest_step(killed) < 6 and proc.poll() is None and time.time() < deadline:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.communicate()
    stopped_at = _latest_step(killed)
    assert 0 < stopped_at < 36 and not (killed / "model.safetensors").exists()
    refused = _train(tiny_config, killed)  # a second start without --resume is refused
    _, err = refused.communicate(timeout=120)
    assert refused.returncode == 2 and "--resume" in err
    _finish(_train(tiny_config, killed, "--resume"))
    a = load_file(str(whole / "model.safetensors"))
    b = load_file(str(killed / "model.safetensors"))
    assert a.keys() == b.keys()
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=0, atol=0, msg=k)


def test_two_processes_train_with_ddp_on_gloo(tiny_config: Path, tmp_path: Path) -> None:
    run = tmp_path / "ddp"
    launcher = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "-m"]
    _finish(_train(tiny_config, run, "train.stages.0.epochs=1", launcher=launcher))
    weights = load_file(str(run / "model.safetensors"))
    assert any(k.startswith("identity.") for k in weights)  # reached the last stage
    assert _latest_step(run) == 7 * 4  # 7 epochs of 4 steps, each step on 2 processes


def test_a_stage_can_start_from_a_weights_file(tiny_config: Path, tmp_path: Path) -> None:
    cfg = yaml.safe_load(tiny_config.read_text())
    spec = dict(cfg["model"])
    torch.manual_seed(7)
    start = build(spec.pop("type"), **spec)
    with torch.no_grad():  # weights no fresh model has, so a silent re-init cannot pass
        for p in start.parameters():
            p.add_(0.01)
    save_model(start, tmp_path / "start.safetensors", cfg["model"])
    joint = {"name": "joint", "epochs": 1, "lr": 0.0, "init": str(tmp_path / "start.safetensors")}
    cfg["train"]["stages"] = [joint]
    final = train(cfg, tmp_path / "run")
    # The crop size of the clips it trained on travels in the weights (restore cuts faces so).
    assert json.loads(read_metadata(final)["model"])["crop_size"] == 96
    assert read_metadata(final)["task"] == "deblur"  # what the leaderboard groups it by
    got, want = load_file(str(final)), dict(start.named_parameters())
    assert got.keys() == start.state_dict().keys()
    for k in want:  # lr 0: the stage kept exactly the weights it started from (batch-norm
        # statistics are buffers and do move)
        torch.testing.assert_close(got[k], want[k], rtol=0, atol=0, msg=k)
    # An ablation starts from the full model's file: the branch it lacks is skipped, every
    # tensor it has is the file's.
    cfg["model"] = {**cfg["model"], "use_audio": False}
    ablated = load_file(str(train(cfg, tmp_path / "run-noaudio")))
    assert not any(".audio." in k for k in ablated) and any(".audio." in k for k in want)
    for k in ablated.keys() & want.keys():
        torch.testing.assert_close(ablated[k], want[k], rtol=0, atol=0, msg=k)
    other = build("gavn-small")
    save_model(other, tmp_path / "other.safetensors", {"type": "gavn-small"})
    cfg["train"]["stages"] = [{**joint, "init": str(tmp_path / "other.safetensors")}]
    with pytest.raises(InputError, match="does not fit the stage's model"):
        train(cfg, tmp_path / "run2")


def test_davd_net_trains_on_car_with_the_qp_maps_of_its_patches(
    prepared_root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, one_thread: None
) -> None:
    """A tiny DAVD-Net, L1 loss, both compression protocols: its training batches carry the QP
    map of each patch (-1 for items compressed at the source), validation the whole crop's."""
    seen: list[torch.Tensor | None] = []
    forward = DAVDNet.forward

    def spy(self: DAVDNet, frames: torch.Tensor, *args, qp=None, **kw) -> torch.Tensor:
        seen.append(None if qp is None else qp.clone())
        return forward(self, frames, *args, qp=qp, **kw)

    monkeypatch.setattr(DAVDNet, "forward", spy)
    cfg = {
        "task": "car",
        "device": "cpu",
        "model": {
            "type": "davd-net-small",
            "channels": 8,
            "deform_groups": 1,
            "front_blocks": 1,
            "v_blocks": 1,
            "reconstruction_blocks": 1,
            "audio_hidden": 8,
        },
        "data": {
            "root": str(prepared_root),
            "n": 0,
            "patch": 32,
            "val_patch": None,
            "compress_at": ["crop", "source"],
        },
        "train": {
            "batch_size": 2,
            "iters_per_epoch": 3,
            "val_items": 1,
            "loss": "l1",
            "stages": [{"epochs": 1, "lr": 1e-4}],
        },
    }
    final = train(cfg, tmp_path / "run")
    assert final.is_file()
    assert json.loads(read_metadata(final)["model"])["crop_size"] == 96
    steps, val = seen[:3], seen[3:]
    assert all(qp is not None and qp.shape == (2, 1, 8, 8) for qp in steps)
    items = torch.cat(steps).flatten(1)  # type: ignore[arg-type]
    assert {bool((i >= 45).all()) for i in items} == {True, False}  # both protocols
    assert all(bool((i >= 45).all()) or bool((i == -1).all()) for i in items)
    # Validation (scores, then the preview) on the whole 96² crop: its whole map.
    assert len(val) == 2 and all(qp is not None and qp.shape == (1, 1, 24, 24) for qp in val)
    # The schema's L1 is what it trained with.
    assert yaml.safe_load((tmp_path / "run" / "config.yaml").read_text())["train"]["loss"] == "l1"


def _tiny_basicvsrpp(prepared_root: Path, flow: str) -> dict:
    """A tiny BasicVSR++ whose one stage pretrains its flow (objective ``flow``) for two steps,
    the rest of the model frozen."""
    body = ["feat_extract.", "deform_align.", "backbone.", "reconstruction.", "head."]
    return {
        "task": "deblur",
        "device": "cpu",
        "model": {
            "type": "basicvsrpp-small",
            "mid_channels": 8,
            "num_blocks": 1,
            "deform_groups": 2,
            "frames_in": 7,
            "frames_out": 3,
            "flow": flow,
        },
        "data": {"root": str(prepared_root), "n": 1, "patch": 32, "val_patch": 32},
        "train": {
            "batch_size": 1,
            "iters_per_epoch": 2,
            "val_items": 1,
            "stages": [{"objective": "flow", "epochs": 1, "lr": 1e-3, "freeze": body}],
        },
    }


def test_the_flow_objective_trains_basicvsrpps_spynet_alone(
    prepared_root: Path, tmp_path: Path, one_thread: None
) -> None:
    cfg = _tiny_basicvsrpp(prepared_root, "spynet")
    final = load_file(train(cfg, tmp_path / "run"))
    torch.manual_seed(cfg.get("seed", 0))  # the trainer's seed, before it builds the model
    spec = dict(cfg["model"])
    fresh = build(spec.pop("type"), **spec).state_dict()
    changed = {k for k in fresh if not torch.equal(fresh[k], final[k])}
    assert changed and all(k.startswith("spynet.") for k in changed)
    dis = _tiny_basicvsrpp(prepared_root, "dis")
    with pytest.raises(InputError, match="freezes every parameter"):
        train(dis, tmp_path / "frozen")  # the DIS model has nothing but the frozen body
    dis["train"]["stages"][0]["freeze"] = []
    with pytest.raises(InputError, match="pretrains a learned flow network"):
        train(dis, tmp_path / "dis")
