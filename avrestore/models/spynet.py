"""SPyNet (Ranjan & Black, "Optical Flow Estimation using a Spatial Pyramid Network", CVPR 2017)
as BasicVSR and BasicVSR++ use it, the backward warp W that goes with it, and DIS flow.

A pair of frames (the reference I¹ and the supporting frame I²) is normalised as for ImageNet
and reduced to a 6-level pyramid by 2x2 average pooling (d). From a zero flow at the coarsest
level k = 0, each level upsamples the coarser flow (u: bilinear, values x2) and adds the
residual that its basic module G_k finds between the reference and the supporting frame warped
(w) by that flow:

    V_k = u(V_{k-1}) + v_k,    v_k = G_k(I¹_k, w(I²_k, u(V_{k-1})), u(V_{k-1})).

The flow V is in pixels, channels (x, y), and warps the supporting frame onto the reference:
``flow_warp(supp, spynet(ref, supp))`` ≈ ``ref``. Frames are resized to a multiple of 32 (the
coarsest level is 1/32) and the flow is resized back and rescaled, as in BasicVSR's code.

Readings (not in the paper, which trains on Flying Chairs from a pretrained pyramid):
- Initialisation: the last conv of every G_k is zero, so a fresh SPyNet returns zero flow. We
  have no pretrained weights (design/peers.md §5.5); a random SPyNet would guide BasicVSR++'s
  alignment with random flow, a zero one makes it a flow-free second-order deformable network
  until SPyNet is pretrained or trained. Parameter names follow BasicSR's, so pretrained SPyNet
  weights load as they are.
- The ImageNet mean and deviation are constants, not weights (non-persistent buffers).
- The four hidden convs of each G_k start He-initialised, not at PyTorch's default (gain ~1/3
  a layer): pretrained from scratch on a known translation, 40 Adam steps at 1e-4 cut the EPE
  1.42 -> 0.96 with He against 1.42 -> 1.31 with the default (on real clips the default did
  not move the validation EPE in 150 steps even at 1e-3).

``dis_flow`` is OpenCV's DIS flow in the same convention: BasicVSR++'s fixed, non-learned
alternative to SPyNet, and the pseudo-label that SPyNet's pretraining regresses.
"""

from __future__ import annotations

import itertools

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

LEVELS = 6  # the pyramid: full size down to 1/32
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def flow_warp(x: Tensor, flow: Tensor, padding_mode: str = "border") -> Tensor:
    """W(x, flow): x (B, C, H, W) sampled bilinearly at p + flow(p); flow (B, 2, H, W) in
    pixels, channels (x, y). Outside the image ``padding_mode`` applies (``border`` as SPyNet
    warps frames, ``zeros`` as BasicVSR++ warps features)."""
    h, w = x.shape[-2:]
    # Positions in float32 whatever the autocast dtype: bf16 would round them to ~1 pixel.
    flow = flow.float()
    gy, gx = torch.meshgrid(
        torch.arange(h, device=x.device, dtype=torch.float32),
        torch.arange(w, device=x.device, dtype=torch.float32),
        indexing="ij",
    )
    # align_corners=True maps pixel index i to 2i/(n-1) - 1 exactly; max() keeps a 1-pixel
    # side finite.
    grid_x = (gx + flow[:, 0]) * (2 / max(w - 1, 1)) - 1
    grid_y = (gy + flow[:, 1]) * (2 / max(h - 1, 1)) - 1
    grid = torch.stack((grid_x, grid_y), dim=-1)
    out = F.grid_sample(
        x.float(), grid, mode="bilinear", padding_mode=padding_mode, align_corners=True
    )
    return out.to(x.dtype)


class SPyNetBasicModule(nn.Module):
    """G_k: [I¹_k, warped I²_k, u(V_{k-1})] (8 channels) -> the flow residual v_k (2 channels):
    five 7x7 convs (32, 64, 32, 16, 2 channels) with ReLU between."""

    def __init__(self) -> None:
        super().__init__()
        widths = (8, 32, 64, 32, 16, 2)
        layers: list[nn.Module] = []
        for c_in, c_out in itertools.pairwise(widths):
            layers += [nn.Conv2d(c_in, c_out, 7, 1, 3), nn.ReLU()]
        self.basic_module = nn.Sequential(*layers[:-1])  # no ReLU on the flow
        *hidden, last = (m for m in self.basic_module if isinstance(m, nn.Conv2d))
        for conv in hidden:  # He, not PyTorch's default (module docstring)
            nn.init.kaiming_normal_(conv.weight, nonlinearity="relu")
            nn.init.zeros_(conv.bias)
        nn.init.zeros_(last.weight)  # a fresh SPyNet gives zero flow (module docstring)
        nn.init.zeros_(last.bias)

    def forward(self, x: Tensor) -> Tensor:
        """The flow residual of this level."""
        return self.basic_module(x)


class SPyNet(nn.Module):
    """Optical flow of frame pairs: ``spynet(ref, supp)`` (B, 3, H, W) in [0, 1] -> the flow
    (B, 2, H, W) in pixels that warps ``supp`` onto ``ref``."""

    def __init__(self) -> None:
        super().__init__()
        self.basic_module = nn.ModuleList(SPyNetBasicModule() for _ in range(LEVELS))
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)

    def compute_flow(self, ref: Tensor, supp: Tensor) -> Tensor:
        """V at the finest level for frames whose sides are multiples of 32."""
        ref_k, supp_k = [(ref - self.mean) / self.std], [(supp - self.mean) / self.std]
        for _ in range(LEVELS - 1):  # d: the pyramid, finest first
            ref_k.append(F.avg_pool2d(ref_k[-1], 2, 2))
            supp_k.append(F.avg_pool2d(supp_k[-1], 2, 2))
        b, _, h, w = ref_k[-1].shape
        flow = ref.new_zeros(b, 2, h, w)
        for k, (r, s) in enumerate(zip(ref_k[::-1], supp_k[::-1], strict=True)):
            if k > 0:
                # u: one level up the pixels are half the size, so the flow doubles.
                flow = 2 * F.interpolate(flow, scale_factor=2, mode="bilinear", align_corners=True)
            flow = flow + self.basic_module[k](torch.cat((r, flow_warp(s, flow), flow), 1))
        return flow

    def forward(self, ref: Tensor, supp: Tensor) -> Tensor:
        """The flow warping ``supp`` onto ``ref``, at their size, in their pixels."""
        h, w = ref.shape[-2:]
        h_up, w_up = -(-h // 32) * 32, -(-w // 32) * 32
        if (h_up, w_up) != (h, w):
            ref = F.interpolate(ref, (h_up, w_up), mode="bilinear", align_corners=False)
            supp = F.interpolate(supp, (h_up, w_up), mode="bilinear", align_corners=False)
        flow = self.compute_flow(ref, supp)
        if (h_up, w_up) == (h, w):
            return flow
        flow = F.interpolate(flow, (h, w), mode="bilinear", align_corners=False)
        return flow * flow.new_tensor([w / w_up, h / h_up]).view(1, 2, 1, 1)


def _gray_u8(frames: Tensor) -> np.ndarray:
    """(N, 3, H, W) RGB in [0, 1] -> (N, H, W) uint8 luma, DIS's input."""
    rgb = (frames.detach().float().clamp(0, 1) * 255).round().to(torch.uint8)
    return np.stack(
        [cv2.cvtColor(f, cv2.COLOR_RGB2GRAY) for f in rgb.permute(0, 2, 3, 1).cpu().numpy()]
    )


def dis_flow(ref: Tensor, supp: Tensor) -> Tensor:
    """OpenCV's DIS flow (medium preset) of pairs (N, 3, H, W) in [0, 1]: (N, 2, H, W) float32
    on their device, in pixels, (x, y), warping ``supp`` onto ``ref`` as SPyNet's. Not
    differentiable: a fixed guide or a pseudo-label."""
    dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)
    # DIS's flow u satisfies I0(p) ≈ I1(p + u(p)): with I0 = ref and I1 = supp it is our V.
    flows = [dis.calc(r, s, None) for r, s in zip(_gray_u8(ref), _gray_u8(supp), strict=True)]
    return torch.from_numpy(np.stack(flows)).permute(0, 3, 1, 2).to(ref.device)
