"""Modulated deformable convolution (DCNv2, Zhu et al. 2019) in pure PyTorch.

No compiled ops: every tap is bilinearly sampled with one ``grid_sample`` call, modulated by its
mask and contracted with the weight in one matmul. This matches the CUDA kernels of
torchvision/mmcv (a neighbour outside the image counts as 0) and exports to ONNX (GridSample,
opset >= 16). The sampled columns take B*C*kh*kw*Ho*Wo floats (about 7 MB for 64 channels,
3x3, 56x56): fine for our feature sizes.

Layout, as torchvision.ops.deform_conv2d and mmcv:
- offset (B, 2*G*kh*kw, Ho, Wo): channel 2*(g*kh*kw + k) is dy and 2*(g*kh*kw + k) + 1 is dx
  of tap k (row-major over the kernel) in deform group g;
- mask (B, G*kh*kw, Ho, Wo): channel g*kh*kw + k modulates tap k of group g;
- the C input channels split into G consecutive deform groups of C/G channels.
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.modules.utils import _pair


def _sampling_grid(
    offset: Tensor,
    in_size: tuple[int, int],
    kernel: tuple[int, int],
    stride: tuple[int, int],
    padding: tuple[int, int],
    dilation: tuple[int, int],
    deform_groups: int,
) -> Tensor:
    """``grid_sample`` grid (B*G, K*Ho, Wo, 2) of the points p + p_k + Δp_k of every tap, in
    float32 at least: offsets from a bf16 convolution (autocast) would otherwise place the
    points on bf16's grid, 2^-9 of the half-width apart near the edges (0.05 px at 56 px)."""
    b, _, ho, wo = offset.shape
    (h, w), (kh, kw) = in_size, kernel
    taps = kh * kw
    dtype, device = torch.promote_types(offset.dtype, torch.float32), offset.device
    offset = offset.to(dtype)
    # p + p_k (DCNv2 Eq. 1): the regular position of tap (i, j) for output pixel (y, x).
    tap_y = torch.arange(kh, dtype=dtype, device=device).repeat_interleave(kw) * dilation[0]
    tap_x = torch.arange(kw, dtype=dtype, device=device).repeat(kh) * dilation[1]
    out_y = torch.arange(ho, dtype=dtype, device=device) * stride[0] - padding[0]
    out_x = torch.arange(wo, dtype=dtype, device=device) * stride[1] - padding[1]
    base_y = tap_y.view(taps, 1, 1) + out_y.view(1, ho, 1)
    base_x = tap_x.view(taps, 1, 1) + out_x.view(1, 1, wo)
    # Pixel index i -> grid_sample's [-1, 1] with align_corners=False: (2i + 1) / n - 1. Its
    # zero padding then reads out-of-image neighbours as 0, as the CUDA kernels do. Converting
    # the small base grid and scaling Δp_k keeps the per-pixel work to one multiply-add.
    delta = offset.reshape(b, deform_groups, taps, 2, ho, wo)
    y = (2 * base_y + 1) / h - 1 + delta[:, :, :, 0] * (2 / h)
    x = (2 * base_x + 1) / w - 1 + delta[:, :, :, 1] * (2 / w)
    grid = torch.stack((x, y), dim=-1)
    return grid.view(b * deform_groups, taps * ho, wo, 2)


def _check_shapes(
    x: Tensor,
    offset: Tensor,
    mask: Tensor,
    weight: Tensor,
    out_size: tuple[int, int],
    deform_groups: int,
) -> None:
    """Raise ValueError unless weight, offset and mask fit ``x`` and the output size."""
    b, c = x.shape[:2]
    taps = weight.shape[2] * weight.shape[3]
    if weight.shape[1] != c or c % deform_groups:
        raise ValueError(
            f"weight {tuple(weight.shape)} and {deform_groups} deform groups do not "
            f"fit {c} input channels"
        )
    for name, t, per_tap in (("offset", offset, 2), ("mask", mask, 1)):
        want = (b, per_tap * deform_groups * taps, *out_size)
        if tuple(t.shape) != want:
            raise ValueError(f"{name} has shape {tuple(t.shape)}, expected {want}")


def modulated_deform_conv2d(
    x: Tensor,
    offset: Tensor,
    mask: Tensor,
    weight: Tensor,
    bias: Tensor | None = None,
    stride: int | tuple[int, int] = 1,
    padding: int | tuple[int, int] = 0,
    dilation: int | tuple[int, int] = 1,
    deform_groups: int = 1,
) -> Tensor:
    """DCNv2: y(p) = Σ_k w_k · x(p + p_k + Δp_k) · Δm_k (DCNv2 Eq. 1); layouts: module docstring."""
    stride, padding, dilation = _pair(stride), _pair(padding), _pair(dilation)
    b, c, h, w = x.shape
    c_out, _, kh, kw = weight.shape
    taps = kh * kw
    ho = (h + 2 * padding[0] - dilation[0] * (kh - 1) - 1) // stride[0] + 1
    wo = (w + 2 * padding[1] - dilation[1] * (kw - 1) - 1) // stride[1] + 1
    # Traced sizes are tensors: checking them would freeze the ONNX graph to these shapes.
    if not torch.jit.is_tracing():
        _check_shapes(x, offset, mask, weight, (ho, wo), deform_groups)

    grid = _sampling_grid(offset, (h, w), (kh, kw), stride, padding, dilation, deform_groups)
    groups_in = x.reshape(b * deform_groups, c // deform_groups, h, w)
    sampled = F.grid_sample(
        groups_in, grid, mode="bilinear", padding_mode="zeros", align_corners=False
    )  # (B*G, C/G, K*Ho, Wo)
    modulated = sampled * mask.reshape(b * deform_groups, 1, taps * ho, wo)
    # (B*G, C/G, K, Ho*Wo) is already ordered (channel, tap) like weight.view(C_out, C*K).
    columns = modulated.reshape(b, c * taps, ho * wo)
    out = torch.matmul(weight.reshape(c_out, c * taps), columns).view(b, c_out, ho, wo)
    return out if bias is None else out + bias.view(1, c_out, 1, 1)


class ModulatedDeformConv2d(nn.Module):
    """DCNv2 layer whose offsets and mask are given by the caller."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int | tuple[int, int] = 3,
        stride: int | tuple[int, int] = 1,
        padding: int | tuple[int, int] = 1,
        dilation: int | tuple[int, int] = 1,
        deform_groups: int = 1,
        bias: bool = True,
    ) -> None:
        super().__init__()
        if in_channels % deform_groups:
            raise ValueError(f"{in_channels} channels do not split into {deform_groups} groups")
        self.in_channels, self.out_channels = in_channels, out_channels
        self.kernel_size = _pair(kernel_size)
        self.stride, self.padding, self.dilation = _pair(stride), _pair(padding), _pair(dilation)
        self.deform_groups = deform_groups
        self.weight = nn.Parameter(torch.empty(out_channels, in_channels, *self.kernel_size))
        self.bias = nn.Parameter(torch.zeros(out_channels)) if bias else None
        # As mmcv/BasicSR: U(±1/sqrt(fan_in)) weights, zero bias.
        bound = 1 / math.sqrt(in_channels * self.kernel_size[0] * self.kernel_size[1])
        nn.init.uniform_(self.weight, -bound, bound)

    def forward(self, x: Tensor, offset: Tensor, mask: Tensor) -> Tensor:
        """Deformable convolution of ``x`` at the given offsets, modulated by ``mask``."""
        return modulated_deform_conv2d(
            x,
            offset,
            mask,
            self.weight,
            self.bias,
            self.stride,
            self.padding,
            self.dilation,
            self.deform_groups,
        )


class DCNv2Pack(ModulatedDeformConv2d):
    """Offsets and mask predicted from a conditioning feature (as EDVR/BasicSR's DCNv2Pack)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        taps = self.kernel_size[0] * self.kernel_size[1]
        self.conv_offset = nn.Conv2d(
            self.in_channels,
            3 * self.deform_groups * taps,
            self.kernel_size,
            self.stride,
            self.padding,
            self.dilation,
        )
        # Zero init: training starts from a plain convolution (zero offsets) at mask sigmoid(0).
        nn.init.zeros_(self.conv_offset.weight)
        nn.init.zeros_(self.conv_offset.bias)

    def forward(self, x: Tensor, feat: Tensor) -> Tensor:
        """Deformable convolution of ``x`` with offsets and mask predicted from ``feat``."""
        o1, o2, mask = self.conv_offset(feat).chunk(3, dim=1)
        return super().forward(x, torch.cat((o1, o2), dim=1), torch.sigmoid(mask))
