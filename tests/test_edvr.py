"""EDVR: the identity start, PCD alignment of a known shift, sizes, the contract, the staged
schedule's switches, the paper-scale size, and GAVN's weights after the PCD move."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
import yaml

from avrestore.errors import InputError
from avrestore.models.complexity import count_parameters
from avrestore.models.contract import RestorerContract, restorer_inputs
from avrestore.models.edvr import EDVR
from avrestore.models.pcd import PCDAlignment
from avrestore.models.weights import WEIGHTS_DIR, load_model

REPO = Path(__file__).resolve().parents[1]

# Every module of EDVR at a few thousand parameters.
TINY = dict(num_feat=8, deform_groups=2, num_extract_block=1, num_reconstruct_block=1)


def _frames(batch: int, h: int, w: int, seed: int = 0) -> torch.Tensor:
    return torch.rand(batch, 5, 3, h, w, generator=torch.Generator().manual_seed(seed))


def _perturb(model: torch.nn.Module, seed: int) -> None:
    """Move every parameter off its initial value, as training would."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.05 * torch.randn(p.shape, generator=g))


@pytest.mark.parametrize("with_tsa", [True, False])
def test_a_fresh_model_returns_its_input_centre_frame_exactly(with_tsa: bool) -> None:
    model = EDVR(**TINY, with_tsa=with_tsa).eval()
    frames = _frames(2, 36, 52)
    with torch.no_grad():
        out = model(frames)
    assert torch.equal(out, frames[:, 2:3])


def test_the_body_gets_gradients_adam_can_use_once_conv_last_is_off_zero() -> None:
    # PyTorch's default init left the body's gradients at 1e-10 and below (under Adam's eps,
    # 1e-8): the He start keeps them usable through Predeblur, the PCD and the fusion.
    frames = F.avg_pool2d(_frames(2, 32, 32).flatten(0, 1), 5, 1, 2).unflatten(0, (2, 5))
    torch.manual_seed(0)
    model = EDVR(num_feat=16, deform_groups=4)
    torch.nn.init.normal_(model.head.conv_last.weight, std=0.003)  # as after a few steps
    F.l1_loss(model(frames), frames[:, 2:3].flip(-1)).backward()
    for name in ("predeblur.conv_first", "feature_extraction.0.conv1", "pcd_align.dcn.0"):
        assert model.get_submodule(name).weight.grad.abs().mean() > 1e-6, name


@pytest.mark.parametrize(("h", "w"), [(36, 52), (32, 48), (17, 31)])
def test_a_trained_model_keeps_the_frame_size(h: int, w: int) -> None:
    model = EDVR(**TINY).eval()
    _perturb(model, 1)
    frames = _frames(2, h, w)
    with torch.no_grad():
        out = model(frames)
    assert out.shape == (2, 1, 3, h, w)
    assert torch.isfinite(out).all()
    assert (out - frames[:, 2:3]).abs().max() > 1e-3  # no longer the identity


def test_every_parameter_gets_a_gradient_once_off_the_identity_init() -> None:
    model = EDVR(**TINY)
    _perturb(model, 2)
    model(_frames(1, 32, 32)).mean().backward()
    silent = [name for name, p in model.named_parameters() if p.grad is None or not p.grad.any()]
    assert silent == []


def _centre_tap(
    conv: torch.nn.Module, out_channels: slice, in_channels: slice, value: float
) -> None:
    """Set the centre tap of ``conv``'s 3x3 kernel to ``value`` on the diagonal of the given
    output and input channels (an identity map, scaled)."""
    n = out_channels.stop - out_channels.start
    conv.weight[out_channels, in_channels, 1, 1] += value * torch.eye(n)


def test_pcd_alignment_undoes_a_known_shift() -> None:
    """PCD with its offsets set to a translation of (1, 2) L3 pixels: the x2 upsampling of the
    offsets at L2 and L1 must make it (4, 8) L1 pixels, which undoes a neighbour moved by
    exactly that."""
    c, groups = 4, 2
    pcd = PCDAlignment(c, groups)
    taps = 9
    with torch.no_grad():
        for p in pcd.parameters():
            p.zero_()
        pcd.offset_in[2].bias[0] = 1.0  # the L3 offset feature: 1 in channel 0
        for lvl in range(3):
            _centre_tap(pcd.offset_out[lvl], slice(0, c), slice(0, c), 1.0)
            dcn = pcd.dcn[lvl]
            # Every tap of every group moves by (dy, dx) = (1, 2) per unit of channel 0; the
            # mask logits stay 0, so sigmoid 1/2 times a centre weight of 2 copies the sample.
            dcn.conv_offset.weight[0 : 2 * groups * taps : 2, 0, 1, 1] = 1.0
            dcn.conv_offset.weight[1 : 2 * groups * taps : 2, 0, 1, 1] = 2.0
            _centre_tap(dcn, slice(0, c), slice(0, c), 2.0)
        for lvl in range(2):
            _centre_tap(pcd.offset_merge[lvl], slice(0, c), slice(c, 2 * c), 1.0)  # ↑2 offset
            _centre_tap(pcd.feat_merge[lvl], slice(0, c), slice(0, c), 1.0)  # this level's DCN
        _centre_tap(pcd.cascade_dcn, slice(0, c), slice(0, c), 2.0)  # zero offsets: a copy

    ref_l1 = torch.rand(1, c, 32, 48, generator=torch.Generator().manual_seed(3))
    nbr_l1 = torch.roll(ref_l1, shifts=(4, 8), dims=(2, 3))  # nbr(p) = ref(p - (4, 8))
    ref = [ref_l1, F.avg_pool2d(ref_l1, 2), F.avg_pool2d(ref_l1, 4)]
    nbr = [nbr_l1, F.avg_pool2d(nbr_l1, 2), F.avg_pool2d(nbr_l1, 4)]
    with torch.no_grad():
        aligned = pcd(nbr, ref)
    inside = (..., slice(0, 32 - 4), slice(0, 48 - 8))  # where p + (4, 8) lies in the frame
    assert (nbr_l1 - ref_l1)[inside].abs().mean() > 0.2  # the neighbour is not aligned
    torch.testing.assert_close(aligned[inside], ref_l1[inside], rtol=0, atol=1e-5)


def test_the_contract_and_dummy_inputs() -> None:
    model = EDVR(**TINY, crop_size=128).eval()
    assert model.contract == RestorerContract(frames_in=5, frames_out=1, crop_size=128)
    inputs = model.dummy_inputs(32, 48)
    assert inputs.keys() == {"frames"} and inputs["frames"].shape == (1, 5, 3, 32, 48)
    # A caller with a longer window (7 LQ frames, and audio) gives it the centre five only.
    window = torch.rand(1, 7, 3, 32, 48)
    got = restorer_inputs(model.contract, window, audio=torch.zeros(1, 1, 21, 13))
    assert got.keys() == {"frames"}
    with torch.no_grad():
        assert torch.equal(model(**got), window[:, 3:4])
        assert model(**inputs).shape == (1, 1, 3, 32, 48)


def test_bad_inputs_are_rejected() -> None:
    model = EDVR(**TINY)
    with pytest.raises(ValueError, match=r"frames must be \(B, 5, 3, H, W\)"):
        model(torch.rand(1, 7, 3, 32, 32))
    with pytest.raises(InputError, match="at least 16x16"):
        model(torch.rand(1, 5, 3, 12, 32))
    with pytest.raises(ValueError, match="odd number of frames"):
        EDVR(num_frame=4)


def test_edvr_m_has_4_04M_parameters_and_3_30M_in_its_x4_sr_form() -> None:
    """EDVR-M's published size is 3.3 M (x4 SR). The same-size form swaps the SR form's first
    conv (3 -> 64, 3x3) for the PreDeblur module and a 1x1 conv; the rest must be EDVR-M."""
    model = EDVR()
    params = count_parameters(model)
    sr_first_conv = 3 * 9 * 64 + 64
    sr_form = params - count_parameters(model.predeblur) - count_parameters(model.conv_1x1)
    sr_form += sr_first_conv
    assert params == 4_042_851
    assert sr_form == 3_300_131 and abs(sr_form / 3.3e6 - 1) < 0.05
    assert count_parameters(EDVR(with_tsa=False)) == 3_738_979  # 2.996 M in the SR form


def test_stage_one_model_carries_into_the_tsa_model_all_but_the_fusion() -> None:
    """§4.3's schedule: the TSA model starts from the no-TSA one; only the fusion is new."""
    stage1 = EDVR(**TINY, with_tsa=False)
    _perturb(stage1, 4)
    full = EDVR(**TINY)
    missing, unexpected = full.load_state_dict(stage1.state_dict(), strict=False)
    assert unexpected == ["fusion.weight", "fusion.bias"]
    assert missing and all(k.startswith("fusion.") for k in missing)
    for name, p in stage1.state_dict().items():
        if not name.startswith("fusion."):
            assert torch.equal(full.state_dict()[name], p), name


def test_the_config_stages_follow_the_edvr_schedule() -> None:
    """configs/edvr-small-car.yaml: no TSA, then TSA with all but the fusion frozen, then all;
    every freeze prefix names parameters."""
    cfg = yaml.safe_load((REPO / "configs" / "edvr-small-car.yaml").read_text())
    assert cfg["data"]["n"] == 0  # 5 LQ frames in, 1 HQ frame out
    stages = cfg["train"]["stages"]
    trainable = []
    for stage in stages:
        names = [n for n, _ in EDVR(**TINY, **stage.get("model", {})).named_parameters()]
        freeze = tuple(stage.get("freeze", ()))
        assert all(any(n.startswith(f) for n in names) for f in freeze), freeze
        trainable.append({n for n in names if not n.startswith(freeze)})
    assert [s.get("model", {}).get("with_tsa", True) for s in stages] == [False, True, True]
    assert trainable[1] and all(n.startswith("fusion.") for n in trainable[1])
    assert trainable[2] == {n for n, _ in EDVR(**TINY).named_parameters()}


@pytest.mark.parametrize("task", ["car", "deblur", "sr"])
def test_gavn_weights_still_load_strictly_with_the_shared_pcd(task: str) -> None:
    """GAVN imports its pyramid and PCD from ``pcd``: the committed weights' keys still fit."""
    model = load_model(WEIGHTS_DIR / f"gavn-small-{task}.safetensors")  # strict=True inside
    assert type(model.temporal.align) is PCDAlignment
