"""The model registry, the MAC counter and ``avrestore models``."""

from __future__ import annotations

import json

import pytest
import torch
from conftest import run_cli
from torch import nn

from avrestore.errors import InputError
from avrestore.models.complexity import count_macs, count_parameters, measure, restores_frames
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


def test_every_frame_restoration_model_has_a_cost() -> None:
    restorers = [name for name in REGISTRY if restores_frames(build(name))]
    assert {"gavn", "gavn-small"} <= set(restorers)
    for name in restorers:
        cost = measure(build(name), size=32)
        assert cost.frames_out >= 1 and cost.frames_in >= cost.frames_out, name
        assert cost.params > 0 and cost.gmacs_per_frame > 0, name


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
