"""DBPN: the projection units' equations, the identity start, sizes, gradients, the contract
and the sizes of the two registered specs."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from avrestore.errors import InputError
from avrestore.models.contract import RestorerContract, restorer_inputs
from avrestore.models.dbpn import DBPN, PROJECTION_KERNELS, DownProjection, UpProjection
from avrestore.models.registry import build

# A few thousand parameters: both kinds of unit, plain and dense, at a fraction of the cost.
TINY = dict(base_filters=4, feature_filters=8, stages=3)


def _frames(batch: int, h: int, w: int, seed: int = 0) -> Tensor:
    return torch.rand(batch, 1, 3, h, w, generator=torch.Generator().manual_seed(seed))


def _perturb(model: nn.Module, seed: int) -> None:
    """Move every parameter off its initial value, as training would."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.05 * torch.randn(p.shape, generator=g))


@pytest.mark.parametrize("scale", sorted(PROJECTION_KERNELS))
def test_a_fresh_model_returns_its_input_exactly(scale: int) -> None:
    model = DBPN(**TINY, scale=scale).eval()
    frames = _frames(2, 36, 52)
    with torch.no_grad():
        assert torch.equal(model(frames), frames)


def _layer(block: nn.Sequential) -> tuple[nn.Module, Tensor]:
    """The conv or deconv of a layer-with-PReLU and the PReLU's slope."""
    return block[0], block[1].weight


def _by_hand_up(unit: UpProjection, L: Tensor, scale: int) -> tuple[Tensor, Tensor]:
    """Eqs. 1-5 in functional form from the unit's weights: (e^l_t, H^t)."""
    _, stride, pad = PROJECTION_KERNELS[scale]
    (p, ap), (g, ag), (q, aq) = map(_layer, (unit.up, unit.down, unit.residual_up))
    H0 = F.prelu(F.conv_transpose2d(L, p.weight, p.bias, stride, pad), ap)
    L0 = F.prelu(F.conv2d(H0, g.weight, g.bias, stride, pad), ag)
    e_l = L0 - L
    return e_l, H0 + F.prelu(F.conv_transpose2d(e_l, q.weight, q.bias, stride, pad), aq)


def _by_hand_down(unit: DownProjection, H: Tensor, scale: int) -> tuple[Tensor, Tensor]:
    """Eqs. 6-10 in functional form from the unit's weights: (e^h_t, L^t)."""
    _, stride, pad = PROJECTION_KERNELS[scale]
    (g, ag), (p, ap), (g2, ag2) = map(_layer, (unit.down, unit.up, unit.residual_down))
    L0 = F.prelu(F.conv2d(H, g.weight, g.bias, stride, pad), ag)
    H0 = F.prelu(F.conv_transpose2d(L0, p.weight, p.bias, stride, pad), ap)
    e_h = H0 - H
    return e_h, L0 + F.prelu(F.conv2d(e_h, g2.weight, g2.bias, stride, pad), ag2)


def _error_term(layer: nn.Module) -> list[Tensor]:
    """Record what ``layer`` (a unit's residual layer) receives: the unit's error term."""
    seen: list[Tensor] = []
    layer.register_forward_pre_hook(lambda _m, args: seen.append(args[0]))
    return seen


@pytest.mark.parametrize("scale", [2, 4])
def test_up_then_down_projection_at_init_follow_eqs_1_to_10(scale: int) -> None:
    torch.manual_seed(0)
    up, down = UpProjection(3, scale), DownProjection(3, scale)
    e_l, e_h = _error_term(up.residual_up), _error_term(down.residual_down)
    L = torch.randn(2, 3, 5, 7)
    with torch.no_grad():
        H = up(L)
        L_next = down(H)
        e_l_hand, H_hand = _by_hand_up(up, L, scale)
        e_h_hand, L_hand = _by_hand_down(down, H, scale)
    assert H.shape == (2, 3, 5 * scale, 7 * scale)
    assert L_next.shape == L.shape
    torch.testing.assert_close(e_l[0], e_l_hand)  # e^l_t = L⁰_t - L^{t-1}
    torch.testing.assert_close(H, H_hand)
    torch.testing.assert_close(e_h[0], e_h_hand)  # e^h_t = H⁰_t - H^t
    torch.testing.assert_close(L_next, L_hand)


def test_a_dense_unit_pools_its_concatenated_inputs_first() -> None:
    torch.manual_seed(0)
    unit = UpProjection(3, 4, n_inputs=2)
    L = torch.randn(1, 6, 4, 4)  # [L¹, L²]
    conv, slope = _layer(unit.pooling)
    with torch.no_grad():
        pooled = F.prelu(F.conv2d(L, conv.weight, conv.bias), slope)
        torch.testing.assert_close(unit(L), _by_hand_up(unit, pooled, 4)[1])


def _set_linear(unit: nn.Module, **weights: Tensor) -> None:
    """Give the named layers of ``unit`` these kernels, no bias and a PReLU slope of 1."""
    with torch.no_grad():
        for name, kernel in weights.items():
            layer, slope = _layer(getattr(unit, name))
            layer.weight.copy_(kernel.view_as(layer.weight))
            layer.bias.zero_()
            slope.fill_(1.0)


def test_back_projection_corrects_by_exactly_the_error_it_measures() -> None:
    # x2 (kernel 6, stride 2, padding 2): taps 2 and 3 are the two pixels that one
    # low-resolution pixel covers, so these kernels are nearest up-sampling and 2x2 averaging.
    nearest = torch.zeros(6, 6)
    nearest[2:4, 2:4] = 1.0
    up, down = UpProjection(1, 2), DownProjection(1, 2)
    L = torch.tensor([[[[1.0, -2.0], [3.0, 4.0]]]])
    H_nearest = torch.tensor([[[[1.0, 1, -2, -2], [1, 1, -2, -2], [3, 3, 4, 4], [3, 3, 4, 4]]]])
    with torch.no_grad():
        # A consistent pair (averaging undoes nearest up-sampling): no error, H^t = H⁰_t and
        # the down unit maps it back to L^{t-1}.
        _set_linear(up, up=nearest, down=nearest / 4, residual_up=nearest)
        _set_linear(down, down=nearest / 4, up=nearest, residual_down=nearest / 4)
        assert torch.equal(up(L), H_nearest)
        assert torch.equal(down(H_nearest), L)
        # g_t doubles: L⁰_t = 2L, e^l_t = L, and the up-projected error is added to H⁰_t.
        _set_linear(up, down=nearest / 2)
        assert torch.equal(up(L), 2 * H_nearest)
        # p'_t doubles: H⁰_t = 2H, e^h_t = H, and its average L is added to L⁰_t.
        _set_linear(down, up=2 * nearest)
        assert torch.equal(down(H_nearest), 2 * L)


@pytest.mark.parametrize(("scale", "h", "w"), [(4, 36, 52), (4, 37, 45), (8, 36, 52), (2, 9, 13)])
def test_any_size_keeps_its_size_and_pads_on_the_right_and_bottom(
    scale: int, h: int, w: int
) -> None:
    torch.manual_seed(0)
    model = DBPN(**TINY, scale=scale).eval()
    _perturb(model, 1)
    frames = _frames(1, h, w)
    padded = F.pad(frames[:, 0], (0, -w % scale, 0, -h % scale), mode="reflect").unsqueeze(1)
    with torch.no_grad():
        out = model(frames)
        whole = model(padded)
    assert out.shape == frames.shape
    assert not torch.equal(out, frames)
    torch.testing.assert_close(out, whole[..., :h, :w])


def test_every_parameter_gets_a_gradient_once_off_the_identity_init() -> None:
    torch.manual_seed(0)
    model = DBPN(**TINY)
    _perturb(model, 1)
    model(_frames(2, 16, 20)).square().mean().backward()
    silent = [name for name, p in model.named_parameters() if p.grad is None or not p.grad.any()]
    assert silent == []


def test_it_learns_a_simple_restoration() -> None:
    torch.manual_seed(0)
    model = DBPN(**TINY)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    frames = _frames(4, 16, 16)
    target = 0.5 * frames + 0.25  # a contrast change, learnt from the identity start
    losses = []
    for _ in range(60):
        loss = (model(frames) - target).abs().mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.6 * losses[0]  # measured: 0.48


def test_the_contract_is_one_crop_in_one_out_and_the_loop_feeds_the_centre_frame() -> None:
    model = DBPN(**TINY, crop_size=96)
    assert model.contract == RestorerContract(frames_in=1, frames_out=1, crop_size=96)
    window = torch.rand(2, 5, 3, 16, 16)  # data.n = 0: five LQ frames per item
    inputs = restorer_inputs(model.contract, window, landmarks=torch.zeros(2, 1, 68, 2))
    assert inputs.keys() == {"frames"}
    assert torch.equal(inputs["frames"], window[:, 2:3])
    assert model(**inputs).shape == (2, 1, 3, 16, 16)


def test_dummy_inputs_run() -> None:
    model = DBPN(**TINY).eval()
    with torch.no_grad():
        out = model(**model.dummy_inputs(20, 28))
    assert out.shape == (1, 1, 3, 20, 28)


def test_bad_inputs_and_settings_are_refused() -> None:
    model = DBPN(**TINY)
    with pytest.raises(ValueError, match="B, 1, 3, H, W"):
        model(torch.rand(1, 3, 3, 16, 16))
    with pytest.raises(InputError, match="at least 4x4"):
        model(torch.rand(1, 1, 3, 3, 16))
    with pytest.raises(InputError, match="scales by"):
        DBPN(**TINY, scale=3)


@pytest.mark.parametrize(
    ("name", "low", "high"),  # measured: 10,530,038, 1,020,086 and 162,862
    [("dbpn", 10.4e6, 10.6e6), ("dbpn-small", 0.95e6, 1.05e6), ("dbpn-tiny", 0.15e6, 0.17e6)],
)
def test_parameter_counts_of_the_registered_specs(name: str, low: float, high: float) -> None:
    model = build(name)
    assert isinstance(model, DBPN)
    assert low < sum(p.numel() for p in model.parameters()) < high
