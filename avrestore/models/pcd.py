"""EDVR's feature pyramid and PCD alignment (Wang et al. 2019), shared by EDVR and GAVN.

A frame's L1 feature gets two coarser levels (L2 at 1/2, L3 at 1/4 of L1) from
``FeaturePyramid``; ``PCDAlignment`` then warps one frame's pyramid onto a reference's:
Pyramid (offsets found at L3, refined at L2 and L1), Cascading (one more deformable conv at
L1) and Deformable (modulated deformable convolutions, DCNv2). Layers as BasicSR's
``edvr_arch`` (``peers.md`` §4.1); the attribute names are GAVN's, whose committed weights
use them.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from avrestore.models.blocks import conv3x3, lrelu
from avrestore.models.dcn import DCNv2Pack


def upsample2(x: Tensor) -> Tensor:
    """Bilinear x2 upsampling, as EDVR's ``nn.Upsample(scale_factor=2, mode='bilinear')``."""
    return F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)


class FeaturePyramid(nn.Module):
    """L1 -> [L1, L2 (1/2), L3 (1/4)]: per level LReLU(stride-2 conv), LReLU(conv), as EDVR's
    conv_l2_1/conv_l2_2 and conv_l3_1/conv_l3_2."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.levels = nn.ModuleList(
            nn.Sequential(
                conv3x3(channels, channels, stride=2),
                nn.LeakyReLU(0.1),
                conv3x3(channels, channels),
                nn.LeakyReLU(0.1),
            )
            for _ in range(2)
        )

    def forward(self, l1: Tensor) -> list[Tensor]:
        """The three levels, finest first."""
        pyramid = [l1]
        for level in self.levels:
            pyramid.append(level(pyramid[-1]))
        return pyramid


class PCDAlignment(nn.Module):
    """EDVR's Pyramid, Cascading and Deformable alignment of a neighbour onto a reference.

    At each level l, coarse to fine, the offset feature ΔP^l is computed from [F^l_nbr, F^l_ref]
    and the x2-upsampled ΔP^(l+1); a DCN samples F^l_nbr with the offsets it predicts from
    ΔP^l, and the result is merged with the x2-upsampled aligned feature of level l+1. A last
    DCN (the cascade) refines the L1 result against the reference once more.
    """

    def __init__(self, channels: int, deform_groups: int) -> None:
        super().__init__()
        c = channels
        self.offset_in = nn.ModuleList(conv3x3(2 * c, c) for _ in range(3))
        self.offset_merge = nn.ModuleList(conv3x3(2 * c, c) for _ in range(2))  # L1, L2
        self.offset_out = nn.ModuleList(conv3x3(c, c) for _ in range(3))
        self.dcn = nn.ModuleList(DCNv2Pack(c, c, deform_groups=deform_groups) for _ in range(3))
        self.feat_merge = nn.ModuleList(conv3x3(2 * c, c) for _ in range(2))  # L1, L2
        self.cascade_offset = nn.Sequential(
            conv3x3(2 * c, c), nn.LeakyReLU(0.1), conv3x3(c, c), nn.LeakyReLU(0.1)
        )
        self.cascade_dcn = DCNv2Pack(c, c, deform_groups=deform_groups)

    def forward(self, nbr: list[Tensor], ref: list[Tensor]) -> Tensor:
        """Warp the pyramid ``nbr`` onto ``ref`` (both finest first); the aligned L1 feature."""
        offset = feat = None
        for lvl in (2, 1, 0):
            o = lrelu(self.offset_in[lvl](torch.cat((nbr[lvl], ref[lvl]), 1)))
            if offset is not None:
                # x2: the coarser level's offsets are in its own, half-size, pixels (as EDVR).
                o = lrelu(self.offset_merge[lvl](torch.cat((o, upsample2(offset) * 2), 1)))
            o = lrelu(self.offset_out[lvl](o))
            f = self.dcn[lvl](nbr[lvl], o)
            if feat is not None:
                f = self.feat_merge[lvl](torch.cat((f, upsample2(feat)), 1))
            offset, feat = o, (lrelu(f) if lvl > 0 else f)  # no LReLU at L1, as EDVR
        return lrelu(self.cascade_dcn(feat, self.cascade_offset(torch.cat((feat, ref[0]), 1))))
