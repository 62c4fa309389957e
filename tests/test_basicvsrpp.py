"""BasicVSR++ and its SPyNet: the warp, SPyNet's pyramid, DIS flow, flow-guided alignment, the
propagation's flows and order, the identity start, gradients, SPyNet's pretraining losses, the
contract and the sizes."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from avrestore.errors import InputError
from avrestore.models.basicvsrpp import (
    BRANCHES,
    KNOWN_ROTATION,
    KNOWN_SCALE,
    KNOWN_SHIFT,
    PHOTOMETRIC_WEIGHT,
    BasicVSRPlusPlus,
    SecondOrderDeformableAlignment,
    dis_flows,
    random_affine_flows,
)
from avrestore.models.complexity import count_parameters
from avrestore.models.contract import RestorerContract
from avrestore.models.spynet import SPyNet, dis_flow, flow_warp

# A few thousand parameters (plus SPyNet's 1.44 M): every module, at a fraction of the cost.
TINY = dict(
    mid_channels=8,
    num_blocks=1,
    deform_groups=2,
    extract_blocks=1,
    reconstruction_blocks=1,
    frames_in=5,
    frames_out=3,
)
# The registry's basicvsrpp-small (basicvsrpp is the constructor's defaults).
SMALL = dict(mid_channels=32, num_blocks=3, deform_groups=8)


def _perturb(model: nn.Module, seed: int, scale: float = 0.02) -> None:
    """Move every parameter off its initial value, as training would."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(scale * torch.randn(p.shape, generator=g))


def _texture(h: int, w: int, seed: int = 0) -> Tensor:
    """A smooth random RGB image (1, 3, h, w) in [0, 1], structured enough for optical flow."""
    g = torch.Generator().manual_seed(seed)
    coarse = torch.rand(1, 3, h // 6, w // 6, generator=g)
    return F.interpolate(coarse, (h, w), mode="bicubic", align_corners=False).clamp(0, 1)


def test_flow_warp_with_an_integer_flow_shifts_like_roll() -> None:
    x = torch.rand(2, 3, 10, 12)
    dx, dy = 2, -1
    flow = torch.tensor([float(dx), float(dy)]).view(1, 2, 1, 1).expand(2, 2, 10, 12)
    # out(p) = x(p + flow): roll by -flow, exact wherever p + flow lies in the image.
    expected = torch.roll(x, shifts=(-dy, -dx), dims=(-2, -1))
    for padding in ("border", "zeros"):
        out = flow_warp(x, flow, padding)
        torch.testing.assert_close(out[..., 1:, : 12 - dx], expected[..., 1:, : 12 - dx])
    zero = torch.zeros(2, 3, 12)
    torch.testing.assert_close(flow_warp(x, flow, "zeros")[..., 0, :], zero)  # row -1: outside
    torch.testing.assert_close(flow_warp(x, flow, "border")[..., 0, 0], x[..., 0, dx])


def _spynet_with_levels(biases: dict[int, tuple[float, float]]) -> SPyNet:
    """A SPyNet whose level k adds the constant flow biases[k] (zero where not given) whatever
    its inputs: every G_k's last conv has zero weights."""
    spynet = SPyNet()
    _perturb(spynet, 0)
    with torch.no_grad():
        for k, module in enumerate(spynet.basic_module):
            last = module.basic_module[-1]
            last.weight.zero_()
            last.bias.copy_(torch.tensor(biases.get(k, (0.0, 0.0))))
    return spynet


def test_spynet_whose_basic_modules_output_zero_gives_zero_flow() -> None:
    ref, supp = torch.rand(2, 3, 40, 52), torch.rand(2, 3, 40, 52)
    assert torch.equal(SPyNet()(ref, supp), torch.zeros(2, 2, 40, 52))  # a fresh one
    assert torch.equal(_spynet_with_levels({})(ref, supp), torch.zeros(2, 2, 40, 52))


def test_spynet_doubles_the_flow_at_each_level_up() -> None:
    # V_0 = (1, -0.5), V_1 = 2 V_0 + (0.25, 0) = (2.25, -1), V_5 = 2^4 V_1 at 64 x 64.
    spynet = _spynet_with_levels({0: (1.0, -0.5), 1: (0.25, 0.0)})
    ref, supp = torch.rand(1, 3, 64, 64), torch.rand(1, 3, 64, 64)
    expected = torch.tensor([36.0, -16.0]).view(1, 2, 1, 1).expand(1, 2, 64, 64)
    torch.testing.assert_close(spynet(ref, supp), expected)
    # 48 x 48 frames are resized to 64 for the pyramid; the flow is scaled back by 48/64.
    out = spynet(ref[..., :48, :48], supp[..., :48, :48])
    torch.testing.assert_close(out, expected[..., :48, :48] * 0.75)


def test_dis_flow_warps_the_supporting_frame_onto_the_reference() -> None:
    texture = _texture(96, 96)
    dx, dy = 3, 2
    ref = texture[..., 8:72, 8:72]
    supp = texture[..., 8 + dy : 72 + dy, 8 + dx : 72 + dx]  # supp(p) = ref(p + (dx, dy))
    flow = dis_flow(ref, supp)
    assert flow.shape == (1, 2, 64, 64) and flow.dtype == torch.float32
    inner = (..., slice(8, -8), slice(8, -8))
    median = flow[inner].flatten(2).median(dim=2).values[0]
    torch.testing.assert_close(
        median, torch.tensor([-dx, -dy], dtype=torch.float32), atol=0.2, rtol=0
    )
    residual = (flow_warp(supp, flow) - ref)[inner].abs().mean()
    assert residual < 0.2 * (supp - ref)[inner].abs().mean()


def test_alignment_with_zero_residue_warps_each_half_by_its_flow() -> None:
    c, h, w = 4, 12, 14
    align = SecondOrderDeformableAlignment(c, deform_groups=2, max_residue_magnitude=10)
    with torch.no_grad():  # C^o's inner layers trained, its last one still zero: residue 0
        for conv in list(align.conv_offset)[:-1]:
            if isinstance(conv, nn.Conv2d):
                conv.weight.normal_()
        # D: the centre tap copies channel k of f_{i-1} and of f_{i-2} to output k, x2 to
        # undo the mask σ(0) = 1/2.
        align.weight.zero_()
        align.bias.zero_()
        for k in range(c):
            align.weight[k, k, 1, 1] = 2.0
            align.weight[k, c + k, 1, 1] = 2.0
    f_n1, f_n2 = torch.rand(1, c, h, w), torch.rand(1, c, h, w)
    s_n1 = torch.tensor([2.0, -1.0]).view(1, 2, 1, 1).expand(1, 2, h, w)
    s_n2 = torch.tensor([-3.0, 1.0]).view(1, 2, 1, 1).expand(1, 2, h, w)
    cond = torch.rand(1, 3 * c, h, w)
    with torch.no_grad():
        out = align(torch.cat((f_n1, f_n2), 1), cond, s_n1, s_n2)
    expected = flow_warp(f_n1, s_n1, "zeros") + flow_warp(f_n2, s_n2, "zeros")
    torch.testing.assert_close(out, expected)

    # So alignment undoes a known shift: frame i shows f_{i-1} moved by (-2, +1) px.
    current = torch.roll(f_n1, shifts=(1, -2), dims=(-2, -1))
    with torch.no_grad():
        out = align(torch.cat((f_n1, torch.zeros_like(f_n2)), 1), cond, s_n1, s_n2)
    torch.testing.assert_close(out[..., 1:, :-2], current[..., 1:, :-2])


class _RecordingAlign(nn.Module):
    """Stands in for D: records the flows it is given, returns f_{i∓1} unwarped."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.channels, self.calls = channels, []

    def forward(self, x: Tensor, cond: Tensor, flow_1: Tensor, flow_2: Tensor) -> Tensor:
        self.calls.append((float(flow_1[0, 0, 0, 0]), float(flow_2[0, 0, 0, 0])))
        return x[:, : self.channels]


class _SpatialOnly(nn.Module):
    """Stands in for R^j: returns g_i, the first C channels of its input."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.channels = channels

    def forward(self, x: Tensor) -> Tensor:
        return x[:, : self.channels]


def test_each_branch_takes_the_flows_of_its_direction_and_keeps_frame_order() -> None:
    model = BasicVSRPlusPlus(**TINY)
    c, t = 8, 5
    g = [torch.full((1, c, 4, 16), float(i + 1)) for i in range(t)]
    # Constant x-flows told apart by value: s_{i→i+1} = i + 1, s_{i+1→i} = (i + 1) / 4.
    flows_backward = torch.zeros(1, t - 1, 2, 4, 16)
    flows_forward = torch.zeros(1, t - 1, 2, 4, 16)
    for i in range(t - 1):
        flows_backward[:, i, 0] = i + 1
        flows_forward[:, i, 0] = (i + 1) / 4
    feats = {"spatial": g}
    for name, flows in (("backward_1", flows_backward), ("forward_1", flows_forward)):
        model.deform_align[name] = _RecordingAlign(c)
        model.backbone[name] = _SpatialOnly(c)
        feats[name] = model.propagate(feats, flows, name)
    # Backward visits 4, 3, 2, 1, 0: s_{i→i+1} = flows[i] and s_{i→i+2} = flows[i] + flows[i+1].
    calls = model.deform_align["backward_1"].calls
    torch.testing.assert_close(
        torch.tensor(calls), torch.tensor([(4.0, 0), (3, 7), (2, 5), (1, 3)])
    )
    # Forward visits 0..4: s_{i→i-1} = flows[i-1] and s_{i→i-2} = flows[i-1] + flows[i-2].
    calls = model.deform_align["forward_1"].calls
    torch.testing.assert_close(
        torch.tensor(calls), torch.tensor([(0.25, 0), (0.5, 0.75), (0.75, 1.25), (1, 1.75)])
    )
    # With D passing f_{i∓1} on and R^j adding g_i, f_i sums g from the branch's start: in
    # frame order, from the last frame backward and from the first forward.
    assert [float(f[0, 0, 0, 0]) for f in feats["backward_1"]] == [15, 14, 12, 9, 5]
    assert [float(f[0, 0, 0, 0]) for f in feats["forward_1"]] == [1, 3, 6, 10, 15]


@pytest.mark.parametrize(
    ("frames_in", "frames_out", "h", "w"), [(5, 3, 30, 37), (4, 2, 16, 20), (3, 3, 9, 12)]
)
def test_a_fresh_model_returns_its_centre_frames_exactly(
    frames_in: int, frames_out: int, h: int, w: int
) -> None:
    kwargs = {**TINY, "frames_in": frames_in, "frames_out": frames_out}
    first = (frames_in - frames_out) // 2
    frames = torch.rand(1, frames_in, 3, h, w)
    for flow in ("spynet", "dis"):
        model = BasicVSRPlusPlus(**kwargs, flow=flow).eval()
        with torch.no_grad():
            out = model(**model.dummy_inputs(h, w) | {"frames": frames})
        assert torch.equal(out, frames[:, first : first + frames_out])


def test_every_parameter_gets_a_gradient_once_off_the_identity_init() -> None:
    torch.manual_seed(0)
    model = BasicVSRPlusPlus(**TINY)
    _perturb(model, 1)
    model(torch.rand(1, 5, 3, 32, 32)).square().mean().backward()
    silent = [name for name, p in model.named_parameters() if p.grad is None or not p.grad.any()]
    assert silent == []


def test_the_centre_frames_see_the_first_and_the_last_input_frame() -> None:
    torch.manual_seed(0)
    model = BasicVSRPlusPlus(**TINY).eval()
    _perturb(model, 2, scale=0.1)
    # Zero flow again: a SPyNet shaken this hard may send every sample outside the frame.
    model.spynet.load_state_dict(SPyNet().state_dict())
    frames = torch.rand(1, 5, 3, 32, 32)
    with torch.no_grad():
        base = model(frames)
        for j in (0, 4):  # reached only through the forward or backward branches
            changed = frames.clone()
            changed[:, j] = torch.rand(3, 32, 32)
            assert (model(changed)[:, 1] - base[:, 1]).abs().max() > 1e-3, j


def test_the_dis_model_computes_the_flow_it_is_not_given() -> None:
    torch.manual_seed(0)
    model = BasicVSRPlusPlus(**TINY, flow="dis").eval()
    _perturb(model, 3)
    texture = _texture(48, 64)
    frames = torch.stack([torch.roll(texture, (i, 2 * i), (-2, -1))[0] for i in range(5)])[None]
    given = dis_flows(frames)
    assert given.shape == (1, 2, 4, 2, 48, 64)
    with torch.no_grad():
        out = model(frames)
        torch.testing.assert_close(model(frames, flow=given), out)
        assert (model(frames, flow=torch.zeros_like(given)) - out).abs().max() > 1e-5


def test_contract_dummy_inputs_and_wrong_inputs() -> None:
    spy = BasicVSRPlusPlus(**TINY)
    dis = BasicVSRPlusPlus(**TINY, flow="dis", crop_size=160)
    assert spy.contract == RestorerContract(
        frames_in=5, frames_out=3, crop_size=224, learned_flow=True
    )
    assert dis.contract == RestorerContract(5, 3, 160, side_data=("flow",))
    assert set(spy.dummy_inputs(24, 28)) == {"frames"}
    inputs = dis.dummy_inputs(24, 28)
    assert inputs["flow"].shape == (1, 2, 4, 2, 24, 28)
    assert dis.eval()(**inputs).shape == (1, 3, 3, 24, 28)
    assert dis.spynet is None and not any(
        n.startswith("spynet.") for n, _ in dis.named_parameters()
    )
    with pytest.raises(ValueError, match="only the DIS model"):
        spy(**inputs)
    with pytest.raises(ValueError, match=r"frames must be \(B, 5, 3, H, W\)"):
        spy(torch.rand(1, 7, 3, 16, 16))
    with pytest.raises(ValueError, match="centre"):
        BasicVSRPlusPlus(**{**TINY, "frames_out": 2})


def test_parameter_counts() -> None:
    paper = BasicVSRPlusPlus()
    assert (paper.frames_in, paper.frames_out) == (15, 11)
    assert count_parameters(paper.spynet) == 1_440_300  # SPyNet's well-known 1.44 M
    # Same-size form: 7.40 M (peers.md §5.2), the paper's x4 model is 7.3 M; within 5 %.
    assert 7.35e6 < count_parameters(paper) < 7.45e6
    assert abs(count_parameters(paper) / 7.3e6 - 1) < 0.05
    small = BasicVSRPlusPlus(**SMALL)
    assert 1.15e6 < count_parameters(small) - 1_440_300 < 1.25e6
    assert set(dict(paper.named_children())) >= {"spynet", "deform_align", "backbone"}
    assert tuple(paper.deform_align) == tuple(paper.backbone) == BRANCHES


def _translating_clip(frames: int, step: int) -> Tensor:
    """(1, frames, 3, 64, 64): a texture moving ``step`` pixels right and down per frame."""
    texture = _texture(128, 128)
    return torch.stack(
        [
            texture[0, :, 16 + i * step : 80 + i * step, 16 + i * step : 80 + i * step]
            for i in range(frames)
        ]
    )[None]


def test_flow_losses_of_a_fresh_spynet_on_a_known_translation() -> None:
    # Frame i+1 is frame i moved 4 pixels right and down: s_{i→i+1} = (4, 4) at full size,
    # (1, 1) at the features' quarter size; s_{i+1→i} = (-1, -1). A fresh SPyNet says 0.
    clip = _translating_clip(5, 4)
    model = BasicVSRPlusPlus(**TINY)
    torch.manual_seed(0)
    terms = model.flow_losses(clip, clip, baselines=True)
    assert 1.2 < terms["epe"].item() < 1.6  # |(1, 1)| = 1.41 wherever DIS finds the motion
    assert terms["epe_zero"].item() == terms["epe"].item()  # a fresh SPyNet is zero flow
    assert terms["epe_dis_lq"].item() == 0.0  # LQ = HQ: DIS on the LQ frames is the target
    # The known motion's EPE for zero flow is the motion's mean length: within its bounds.
    assert (
        0.1 < terms["epe_known"].item() < KNOWN_SHIFT * 2**0.5 + 8 * (KNOWN_ROTATION + KNOWN_SCALE)
    )
    torch.testing.assert_close(
        terms["total"],
        terms["epe"] + PHOTOMETRIC_WEIGHT * terms["photometric"] + terms["epe_known"],
    )
    assert "epe_dis_lq" not in model.flow_losses(clip, clip)  # baselines only when asked
    assert terms["preview"].shape == (3, 16, 48)
    # The photometric term is the error of warping by the predicted (zero) flow: the frames'
    # own difference at quarter size.
    assert terms["photometric"].item() > 0.01
    assert not terms["epe_dis_lq"].requires_grad and terms["total"].requires_grad


def test_known_motion_is_the_affine_flow_it_states() -> None:
    torch.manual_seed(0)
    flows = random_affine_flows(64, 17, 21)
    centre = flows[:, :, 8, 10]  # the centre pixel of an odd grid moves by the shift alone
    assert centre.abs().max() <= KNOWN_SHIFT and centre.abs().max() > 0.9 * KNOWN_SHIFT
    # Affine: the flow's steps along x and y are the same everywhere ...
    dx, dy = flows.diff(dim=3), flows.diff(dim=2)
    torch.testing.assert_close(dx, dx[..., :1].expand_as(dx), atol=1e-5, rtol=0)
    torch.testing.assert_close(dy, dy[..., :1, :].expand_as(dy), atol=1e-5, rtol=0)
    # ... and (sR − I) per pixel: a scaled rotation, so dfx/dx = dfy/dy and dfx/dy = −dfy/dx.
    torch.testing.assert_close(dx[:, 0, 0, 0], dy[:, 1, 0, 0], atol=1e-5, rtol=0)
    torch.testing.assert_close(dy[:, 0, 0, 0], -dx[:, 1, 0, 0], atol=1e-5, rtol=0)
    scale = torch.hypot(1 + dx[:, 0, 0, 0], dx[:, 1, 0, 0])  # s = |sR's first column|
    assert (scale - 1).abs().max() <= KNOWN_SCALE + 1e-6
    angle = torch.atan2(dx[:, 1, 0, 0], 1 + dx[:, 0, 0, 0])
    assert angle.abs().max() <= KNOWN_ROTATION + 1e-6


def test_flow_losses_train_spynet_alone_towards_the_motion() -> None:
    torch.manual_seed(0)
    clip = _translating_clip(3, 4)
    model = BasicVSRPlusPlus(**{**TINY, "frames_in": 3, "frames_out": 1})
    before = {k: v.clone() for k, v in model.state_dict().items()}
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    first = model.flow_losses(clip, clip)["epe"].item()
    for _ in range(40):
        opt.zero_grad()
        model.flow_losses(clip, clip)["total"].backward()
        opt.step()
    assert model.flow_losses(clip, clip)["epe"].item() < 0.75 * first  # 1.42 -> 0.87 measured
    changed = {k for k, v in model.state_dict().items() if not torch.equal(v, before[k])}
    assert changed and all(k.startswith("spynet.") for k in changed)


def test_flow_losses_need_a_spynet_and_matching_clips() -> None:
    clip = _translating_clip(5, 4)
    with pytest.raises(InputError, match="no SPyNet to pretrain"):
        BasicVSRPlusPlus(**TINY, flow="dis").flow_losses(clip, clip)
    with pytest.raises(ValueError, match="differ"):
        BasicVSRPlusPlus(**TINY).flow_losses(clip, clip[:, :4])
