"""Modulated deformable convolution: exact against a looped reference, plain conv at zero
offsets, gradients, ONNX export."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import Tensor

from avrestore.models.dcn import DCNv2Pack, modulated_deform_conv2d


def _bilinear_zero_outside(img: Tensor, y: Tensor, x: Tensor) -> Tensor:
    """Sample img (B, C, H, W) at real positions y, x (B, Ho, Wo); out-of-image pixels are 0."""
    b, _, h, w = img.shape
    batch = torch.arange(b).view(b, 1, 1)
    y0, x0 = y.floor().long(), x.floor().long()
    out = 0
    for yy in (y0, y0 + 1):
        for xx in (x0, x0 + 1):
            weight = (1 - (y - yy).abs()) * (1 - (x - xx).abs())
            inside = (yy >= 0) & (yy < h) & (xx >= 0) & (xx < w)
            value = img[batch, :, yy.clamp(0, h - 1), xx.clamp(0, w - 1)].permute(0, 3, 1, 2)
            out = out + value * (weight * inside).unsqueeze(1)
    return out


def _reference(x, offset, mask, weight, bias, stride, padding, dilation, groups) -> Tensor:
    """DCNv2 written tap by tap: y(p) = Σ_k w_k · x(p + p_k + Δp_k) · m_k."""
    b, c, h, w = x.shape
    c_out, _, kh, kw = weight.shape
    (sh, sw), (ph, pw), (dh, dw) = stride, padding, dilation
    ho = (h + 2 * ph - dh * (kh - 1) - 1) // sh + 1
    wo = (w + 2 * pw - dw * (kw - 1) - 1) // sw + 1
    rows, cols = torch.meshgrid(torch.arange(ho), torch.arange(wo), indexing="ij")
    cg, taps = c // groups, kh * kw
    out = torch.zeros(b, c_out, ho, wo, dtype=x.dtype)
    for g in range(groups):
        for i in range(kh):
            for j in range(kw):
                k = g * taps + i * kw + j
                y = rows * sh - ph + i * dh + offset[:, 2 * k]
                xx = cols * sw - pw + j * dw + offset[:, 2 * k + 1]
                sampled = _bilinear_zero_outside(x[:, g * cg : (g + 1) * cg], y, xx)
                sampled = sampled * mask[:, k : k + 1]
                out += torch.einsum(
                    "oc,bchw->bohw", weight[:, g * cg : (g + 1) * cg, i, j], sampled
                )
    return out + bias.view(1, -1, 1, 1)


@pytest.mark.parametrize(
    ("kernel", "stride", "padding", "dilation", "groups"),
    [
        ((3, 3), (1, 1), (1, 1), (1, 1), 1),
        ((3, 3), (1, 1), (1, 1), (1, 1), 4),
        ((3, 3), (2, 2), (1, 1), (1, 1), 2),
        ((3, 3), (1, 1), (2, 2), (2, 2), 2),
        ((2, 3), (2, 1), (0, 1), (2, 1), 4),
    ],
)
def test_matches_looped_reference(kernel, stride, padding, dilation, groups) -> None:
    torch.manual_seed(0)
    b, c, c_out, h, w = 2, 8, 5, 9, 7
    x = torch.randn(b, c, h, w)
    weight = torch.randn(c_out, c, *kernel)
    bias = torch.randn(c_out)
    ho = (h + 2 * padding[0] - dilation[0] * (kernel[0] - 1) - 1) // stride[0] + 1
    wo = (w + 2 * padding[1] - dilation[1] * (kernel[1] - 1) - 1) // stride[1] + 1
    taps = groups * kernel[0] * kernel[1]
    offset = torch.randn(b, 2 * taps, ho, wo) * 4  # large: many samples leave the image
    mask = torch.rand(b, taps, ho, wo)

    got = modulated_deform_conv2d(x, offset, mask, weight, bias, stride, padding, dilation, groups)
    want = _reference(x, offset, mask, weight, bias, stride, padding, dilation, groups)

    assert got.shape == (b, c_out, ho, wo)
    assert (got - want).abs().max() < 1e-4


def test_reference_case_samples_outside_the_image() -> None:
    """The offsets above (σ = 4 px on a 9x7 image) put many taps' neighbours off the image."""
    torch.manual_seed(0)
    y = torch.arange(9.0).view(9, 1) + torch.randn(9, 7) * 4
    x = torch.arange(7.0).view(1, 7) + torch.randn(9, 7) * 4
    outside = (y < 0) | (y > 8) | (x < 0) | (x > 6)
    assert outside.float().mean() > 0.3


@pytest.mark.parametrize(
    ("stride", "padding", "dilation", "groups"), [(1, 1, 1, 1), (2, 1, 1, 2), (1, 2, 2, 4)]
)
def test_zero_offsets_unit_mask_is_plain_conv(stride, padding, dilation, groups) -> None:
    torch.manual_seed(1)
    x = torch.randn(2, 8, 10, 11)
    weight, bias = torch.randn(6, 8, 3, 3), torch.randn(6)
    want = F.conv2d(x, weight, bias, stride, padding, dilation)
    ho, wo = want.shape[-2:]
    offset = torch.zeros(2, 2 * groups * 9, ho, wo)
    mask = torch.ones(2, groups * 9, ho, wo)

    got = modulated_deform_conv2d(x, offset, mask, weight, bias, stride, padding, dilation, groups)

    assert (got - want).abs().max() < 1e-4


def test_dcnv2pack_starts_as_half_a_plain_conv() -> None:
    """conv_offset is zero at init: zero offsets and mask sigmoid(0) = 0.5 on every tap."""
    torch.manual_seed(2)
    dcn = DCNv2Pack(8, 6, kernel_size=3, padding=1, deform_groups=4)
    with torch.no_grad():
        dcn.bias.normal_()
    x, feat = torch.randn(2, 8, 12, 10), torch.randn(2, 8, 12, 10)

    got = dcn(x, feat)

    want = 0.5 * F.conv2d(x, dcn.weight, padding=1) + dcn.bias.view(1, -1, 1, 1)
    assert (got - want).abs().max() < 1e-5


def test_gradients_reach_every_input(one_thread) -> None:
    torch.manual_seed(3)
    b, c, c_out, h, w, groups = 1, 2, 2, 3, 4, 2
    # Bilinear sampling is not differentiable at integer positions: keep every fractional part
    # of the offsets in [0.2, 0.8]; the integer parts send some taps off the image.
    whole = torch.randint(-3, 4, (b, 2 * groups * 9, h, w)).double()
    offset = whole + 0.2 + 0.6 * torch.rand(b, 2 * groups * 9, h, w, dtype=torch.float64)
    inputs = (
        torch.randn(b, c, h, w, dtype=torch.float64),
        offset,
        torch.rand(b, groups * 9, h, w, dtype=torch.float64),
        torch.randn(c_out, c, 3, 3, dtype=torch.float64),
        torch.randn(c_out, dtype=torch.float64),
    )
    for t in inputs:
        t.requires_grad_(True)

    def dcn(x, offset, mask, weight, bias):
        return modulated_deform_conv2d(x, offset, mask, weight, bias, 1, 1, 1, groups)

    assert torch.autograd.gradcheck(dcn, inputs, eps=1e-6, atol=1e-6)
    dcn(*inputs).square().sum().backward()
    assert all(t.grad is not None and t.grad.abs().sum() > 0 for t in inputs)


def test_bf16_offsets_sample_at_exact_positions_under_autocast() -> None:
    # The centre tap copies each channel, the others are zero: the output is x sampled at p +
    # Δp. Offsets exact in bf16 (multiples of 1/4), as a bf16 convolution hands them over; near
    # the far edge a bf16 grid would misplace the points by up to 0.05 px, which on noise moves
    # values by a few hundredths, where bf16's rounding of the samples moves them by 2^-8.
    torch.manual_seed(0)
    c, h, w = 2, 56, 56
    x = torch.rand(1, c, h, w)
    weight = torch.zeros(c, c, 3, 3)
    weight[:, :, 1, 1] = torch.eye(c)
    steps = torch.randint(-6, 7, (1, 2, h, w)).float() / 4
    offset = torch.zeros(1, 18, h, w)
    offset[:, 8:10] = steps  # tap 4, the centre: dy, dx
    mask = torch.ones(1, 9, h, w)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = modulated_deform_conv2d(x, offset.bfloat16(), mask, weight, padding=1).float()
    rows, cols = torch.meshgrid(torch.arange(h), torch.arange(w), indexing="ij")
    want = _bilinear_zero_outside(x, rows + steps[:, 0], cols + steps[:, 1])
    assert (out - want).abs().max() < 2**-7


def test_wrong_offset_shape_is_refused() -> None:
    x, weight = torch.randn(1, 4, 6, 6), torch.randn(3, 4, 3, 3)
    offset, mask = torch.zeros(1, 2 * 9, 6, 6), torch.ones(1, 9, 6, 6)
    with pytest.raises(ValueError, match="offset has shape"):
        modulated_deform_conv2d(x, offset, mask, weight, padding=1, deform_groups=2)


# The dynamo exporter needs onnxscript, which we do not install: use the TorchScript exporter.
@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_onnx_export_matches_pytorch(tmp_path) -> None:
    ort = pytest.importorskip("onnxruntime")
    pytest.importorskip("onnx")
    torch.manual_seed(4)
    dcn = DCNv2Pack(8, 6, kernel_size=3, padding=1, deform_groups=2).eval()
    with torch.no_grad():  # non-zero offsets of a few pixels, so sampling is really deformed
        dcn.conv_offset.weight.normal_(std=0.5)
        dcn.conv_offset.bias.normal_()
    x, feat = torch.randn(1, 8, 12, 10), torch.randn(1, 8, 12, 10)
    path = tmp_path / "dcn.onnx"

    torch.onnx.export(
        dcn,
        (x, feat),
        path,
        input_names=["x", "feat"],
        output_names=["y"],
        opset_version=17,
        dynamo=False,
    )
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    (got,) = session.run(None, {"x": x.numpy(), "feat": feat.numpy()})

    with torch.no_grad():
        want = dcn(x, feat).numpy()
    assert got.shape == want.shape
    assert abs(got - want).max() < 1e-4
