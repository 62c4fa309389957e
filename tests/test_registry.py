"""The model registry, the MAC counter and ``avrestore models``."""

from __future__ import annotations

import json

import pytest
import torch
from conftest import run_cli
from torch import nn

from avrestore.errors import InputError
from avrestore.models.complexity import count_macs, count_parameters, measure
from avrestore.models.contract import (
    AudioInput,
    LandmarkerContract,
    RestorerContract,
    landmarker_contract,
    restorer_contract,
    restorer_inputs,
)
from avrestore.models.dcn import DCNv2Pack
from avrestore.models.registry import REGISTRY, build


def test_build_applies_overrides_and_rejects_unknown_names() -> None:
    model = build("gavn-small", n=2, use_audio=False)
    assert (model.frames_in, model.frames_out) == (9, 5)
    assert not any(name.startswith("identity.audio.") for name, _ in model.named_parameters())
    with pytest.raises(InputError, match=r"unknown model 'nope'; known: .*gavn-small"):
        build("nope")


def test_macs_of_conv_linear_and_deformable_conv() -> None:
    class Net(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv = nn.Conv2d(3, 8, 3, stride=2, padding=1)  # 8x8 out: 64*8*27 MACs
            self.dcn = DCNv2Pack(8, 4, deform_groups=2)  # 64*4*72 + offset conv 64*54*72
            self.fc = nn.Linear(4 * 64, 10)  # 10*256

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            y = self.conv(x)
            return self.fc(self.dcn(y, y).flatten(1))

    assert count_macs(Net(), x=torch.rand(1, 3, 16, 16)) == (
        64 * 8 * 27 + 64 * 4 * 72 + 64 * 54 * 72 + 10 * 256
    )


def test_every_registered_model_declares_a_contract_and_has_a_cost() -> None:
    kinds = {name: type(build(name).contract) for name in REGISTRY}
    assert set(kinds.values()) <= {RestorerContract, LandmarkerContract}
    assert kinds["gavn-small"] is RestorerContract and kinds["landmark-net"] is LandmarkerContract
    for name in REGISTRY:
        cost = measure(build(name), size=32)
        assert cost.frames_out >= 1 and cost.frames_in >= cost.frames_out, name
        assert cost.params > 0 and cost.gmacs_per_frame > 0, name


def test_a_contract_says_what_the_model_consumes() -> None:
    full = restorer_contract(build("gavn-small"))
    assert full == RestorerContract(
        frames_in=7,
        frames_out=3,
        crop_size=224,
        audio=AudioInput(window=21, n_mfcc=13, rate=16000),
        landmarks=True,
        ablations=("audio", "landmarks", "temporal"),
    )
    bare = restorer_contract(build("gavn-small", n=2, use_audio=False, crop_size=128))
    assert (bare.frames_in, bare.frames_out, bare.crop_size) == (9, 5, 128)
    assert bare.audio is None and bare.landmarks
    assert not restorer_contract(build("gavn-small", use_identity=False)).landmarks
    assert landmarker_contract(build("landmark-net")).input_size == 112
    with pytest.raises(InputError, match="LandmarkNet, not a face restoration model"):
        restorer_contract(build("landmark-net"), "x")
    with pytest.raises(InputError, match="Linear, not a landmark network"):
        landmarker_contract(nn.Linear(1, 1))


def test_models_cli_lists_both_gavn_sizes_as_json() -> None:
    result = run_cli("models", "--json", "--size", "32")
    assert result.returncode == 0, result.stderr
    rows = {row["name"]: row for row in json.loads(result.stdout)}
    for name in ("gavn", "gavn-small"):
        row = rows[name]
        assert row["params"] == count_parameters(build(name))
        assert (row["frames_in"], row["frames_out"], row["frame_size"]) == (7, 3, 32)
        assert row["gmacs_per_frame"] > 0 and row["summary"]
    assert rows["gavn"]["gmacs_per_frame"] > rows["gavn-small"]["gmacs_per_frame"]


def test_the_crop_size_a_model_was_trained_on_travels_in_its_weights(tmp_path) -> None:
    from avrestore.models.weights import load_model, save_model

    save_model(
        build("gavn-small", crop_size=128),
        tmp_path / "m.safetensors",
        {"type": "gavn-small", "crop_size": 128},
    )
    assert restorer_contract(load_model(tmp_path / "m.safetensors")).crop_size == 128


def test_callers_pass_a_model_only_what_its_contract_consumes() -> None:
    frames = torch.arange(7.0).view(1, 7, 1, 1, 1).expand(1, 7, 3, 4, 4)
    audio, marks, crop = torch.zeros(1, 1, 21, 13), torch.zeros(1, 1, 68, 2), torch.zeros(1, 4)
    image_only = RestorerContract(frames_in=1, frames_out=1, crop_size=4)
    got = restorer_inputs(image_only, frames, audio, marks, crop)
    assert set(got) == {"frames"} and got["frames"].flatten().unique().tolist() == [3.0]
    guided = RestorerContract(5, 1, 4, AudioInput(), landmarks=True)
    got = restorer_inputs(guided, frames, audio, marks, crop)
    assert set(got) == {"frames", "audio", "landmarks", "crop"}
    assert got["frames"][0, :, 0, 0, 0].tolist() == [1.0, 2.0, 3.0, 4.0, 5.0]
    with pytest.raises(ValueError, match="cannot be centred"):
        restorer_inputs(RestorerContract(2, 2, 4), frames)


def test_a_transposed_convolution_counts_one_mac_per_input_value_and_weight() -> None:
    deconv = nn.Sequential(nn.ConvTranspose2d(4, 6, kernel_size=4, stride=2, padding=1))
    assert count_macs(deconv, input=torch.rand(1, 4, 5, 5)) == 4 * 25 * 6 * 16


def test_a_3d_convolution_counts_one_mac_per_output_value_and_filter_weight() -> None:
    conv = nn.Sequential(nn.Conv3d(2, 5, kernel_size=3, padding=1))
    assert count_macs(conv, input=torch.rand(1, 2, 4, 6, 6)) == (5 * 4 * 6 * 6) * (2 * 27)
