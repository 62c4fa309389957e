"""LPIPS: the weight loader's key mapping (torchvision AlexNet + LPIPS heads), shapes, zero
distance for identical images, and no metric without weights."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from avrestore.errors import InputError
from avrestore.metrics.lpips import CHANNELS, LPIPS, alexnet_features, load_lpips, lpips_frames


def _save_upstream_layout(tmp_path: Path, seed: int = 0) -> tuple[Path, Path]:
    """Random weights saved under the keys of the real files: torchvision's AlexNet state dict
    (``features.*`` plus the classifier) and LPIPS's ``alex.pth`` (``lin{l}.model.1.weight``)."""
    torch.manual_seed(seed)
    features = alexnet_features().state_dict()
    alexnet = {f"features.{k}": v for k, v in features.items()}
    alexnet["classifier.1.weight"] = torch.randn(8, 16)  # present upstream (4096 x 9216), unused
    heads = {f"lin{i}.model.1.weight": torch.rand(1, c, 1, 1) for i, c in enumerate(CHANNELS)}
    a, h = tmp_path / "alexnet.pth", tmp_path / "alex.pth"
    torch.save(alexnet, a)
    torch.save(heads, h)
    return a, h


def test_trunk_has_torchvision_alexnet_shapes() -> None:
    shapes = {k: tuple(v.shape) for k, v in alexnet_features().state_dict().items()}
    assert shapes == {
        "0.weight": (64, 3, 11, 11),
        "0.bias": (64,),
        "3.weight": (192, 64, 5, 5),
        "3.bias": (192,),
        "6.weight": (384, 192, 3, 3),
        "6.bias": (384,),
        "8.weight": (256, 384, 3, 3),
        "8.bias": (256,),
        "10.weight": (256, 256, 3, 3),
        "10.bias": (256,),
    }


def test_loader_maps_upstream_keys(tmp_path: Path) -> None:
    a, h = _save_upstream_layout(tmp_path)
    model = load_lpips(a, h)
    assert isinstance(model, LPIPS) and not model.training
    heads = torch.load(h, weights_only=True)
    alexnet = torch.load(a, weights_only=True)
    for i in range(len(CHANNELS)):
        assert torch.equal(model.lins[i].weight, heads[f"lin{i}.model.1.weight"])
    for idx in (0, 3, 6, 8, 10):
        assert torch.equal(model.features[idx].weight, alexnet[f"features.{idx}.weight"])
        assert torch.equal(model.features[idx].bias, alexnet[f"features.{idx}.bias"])


def test_distance_shapes_and_zero_for_identical(tmp_path: Path) -> None:
    model = load_lpips(*_save_upstream_layout(tmp_path))
    x = torch.rand(2, 3, 64, 80)
    y = (x + 0.2 * torch.randn_like(x)).clamp(0, 1)
    d = model(x, y)
    assert d.shape == (2,)
    assert torch.all(d > 0)
    assert torch.allclose(model(x, x), torch.zeros(2))
    frames = np.random.default_rng(0).integers(0, 256, (3, 64, 64, 3), dtype=np.uint8)
    assert lpips_frames(model, frames, frames) == pytest.approx(0.0, abs=1e-7)
    noisy = np.clip(frames.astype(int) + 40, 0, 255).astype(np.uint8)
    assert lpips_frames(model, noisy, frames) > 0


def test_distance_follows_the_lpips_formula(tmp_path: Path) -> None:
    """Recompute d = Σ_l mean_hw Σ_c w_lc (x̂ − ŷ)² by hand from the tapped activations."""
    model = load_lpips(*_save_upstream_layout(tmp_path))
    x, y = torch.rand(1, 3, 64, 64), torch.rand(1, 3, 64, 64)
    shift = torch.tensor([-0.030, -0.088, -0.188]).view(1, 3, 1, 1)
    scale = torch.tensor([0.458, 0.448, 0.450]).view(1, 3, 1, 1)
    total = 0.0
    fx, fy = (2 * x - 1 - shift) / scale, (2 * y - 1 - shift) / scale
    relus = [i for i, m in enumerate(model.features) if isinstance(m, nn.ReLU)]
    for layer, stop in enumerate(relus):
        ax, ay = model.features[: stop + 1](fx), model.features[: stop + 1](fy)
        ax = ax / (ax.norm(dim=1, keepdim=True) + 1e-10)
        ay = ay / (ay.norm(dim=1, keepdim=True) + 1e-10)
        w = model.lins[layer].weight.view(1, -1, 1, 1)
        total += float(((ax - ay) ** 2 * w).sum(1).mean())
    assert float(model(x, y)) == pytest.approx(total, rel=1e-5)


def test_no_weights_no_metric(tmp_path: Path) -> None:
    assert load_lpips(None, None) is None
    a, _ = _save_upstream_layout(tmp_path)
    assert load_lpips(a, None) is None


def test_wrong_files_are_input_errors(tmp_path: Path) -> None:
    _, h = _save_upstream_layout(tmp_path)
    with pytest.raises(InputError, match="no such file"):
        load_lpips(tmp_path / "missing.pth", h)
    with pytest.raises(InputError, match="lack"):
        load_lpips(h, h)  # heads given twice: no AlexNet keys
    junk = tmp_path / "junk.pth"
    junk.write_bytes(b"not a checkpoint")
    with pytest.raises(InputError, match="cannot read"):
        load_lpips(junk, h)
