"""EDVR: Video Restoration with Enhanced Deformable Convolutional Networks (Wang et al., CVPRW
2019), the M variant, in its same-size form: a peer restorer of GAVN (``peers.md`` §4).

From 2N+1 = 5 LQ frames of full size EDVR restores the centre one, at 1/4 of the frame size:

- ``Predeblur`` (the paper's PreDeblur module for high-resolution input): a full-size conv,
  two stride-2 convs to 1/4 and residual blocks on an inner 1/8, 1/16 pyramid deblur each
  frame; a 1x1 conv and ``num_extract_block`` residual blocks make its L1 feature;
- ``FeaturePyramid`` and ``PCDAlignment`` (``avrestore.models.pcd``): L2, L3 by stride-2
  convs; every frame's pyramid is aligned onto the centre frame's;
- ``TSAFusion``: temporal attention weighs each aligned frame per pixel by its similarity
  to the centre one, a 1x1 conv fuses them, and spatial attention modulates the result;
- reconstruction: ``num_reconstruct_block`` residual blocks, two conv + pixel-shuffle x2
  (1/4 -> full size), conv_hr, conv_last; the centre LQ frame is added (global residual).

Readings (each explained where it is made):
- Same-size form: LQ frames come at full size, as every peer gets them (bicubic-upsampled
  for SR, ``peers.md`` §0). EDVR's own code does this with ``hr_in`` and the PreDeblur
  module, as in its REDS deblur and deblur+compression models; the global residual is then
  the centre frame itself, not its bilinear x4 upsampling.
- Size: EDVR-M (64 features, 8 deform groups, 5 extraction and 10 reconstruction blocks) has
  3.30 M parameters in its x4 SR form. This form has 4.04 M: Predeblur (0.740 M) and the 1x1
  conv after it (4.2 k) take the place of the SR form's single 3 -> 64 first conv (1.8 k);
  every other layer is the same (``tests/test_edvr.py`` checks the 3.30 M). It costs 36.5
  GMACs per restored 224 x 224 frame (``complexity.measure``), 9.9 G of it in Predeblur,
  which runs at full and half size on all five frames.
- The HR head (upconv2's output, conv_hr, conv_last) is ``num_feat`` wide. EDVR's code fixes
  it at 64 whatever ``num_feat`` is: the same for EDVR-M; for a 32-feature model the 64-wide
  head would add 7 % of parameters and 23 % of MACs (0.95 M, 10.3 G instead of 0.88 M,
  8.4 G), nearly all in the full-size conv_hr.
- Initialisation (not in the paper): conv_last is zero, so a fresh EDVR returns its input's
  centre frame exactly, as a fresh GAVN does; training starts from the identity rather than
  from the input plus a random residual. Every other convolution outside the residual blocks
  is He-initialised for the leaky ReLU (``he_init``), not left at PyTorch's default (gain
  ~1/3 a layer, EDVR's code): through EDVR's ~30 plain layers the default shrank the
  gradients reaching Predeblur, the PCD and the fusion to 1e-10-1e-14 per weight (measured on
  real batches with conv_last at 0.003), below Adam's eps of 1e-8, and the first
  edvr-small-car trained nothing but the head's colour offset (+0.03 dB). He-initialised,
  the same layers get 1e-5-1e-4.
- Without TSA (``with_tsa=False``, stage 1 of the schedule, ``peers.md`` §4.3) the fusion is
  one 1x1 conv with no activation, as EDVR's code. Its weight (``fusion.weight``) is not one
  of TSA's, so the TSA stage starts its fusion afresh, as in EDVR's training: that is why it
  first trains the fusion alone.
- Every frame, the centre one included, is aligned onto the centre frame (as EDVR's code);
  the five alignments run as one batch. Frames are reflect-padded (right, bottom) to a
  multiple of 16 (L3 of the inner pyramid is at 1/16) and the output cropped back.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from avrestore.errors import InputError
from avrestore.models.blocks import (
    ResidualBlock,
    UpsampleX4Head,
    conv3x3,
    he_init,
    lrelu,
    residual_blocks,
)
from avrestore.models.contract import RestorerContract
from avrestore.models.pcd import FeaturePyramid, PCDAlignment, upsample2

SIZE_MULTIPLE = 16  # the PreDeblur pyramid's coarsest level is at 1/16


class Predeblur(nn.Module):
    """Frame (3, H, W) -> feature (C, H/4, W/4): EDVR's PreDeblur module for HR input.

    A full-size conv and two stride-2 convs reach 1/4; an inner pyramid (1/8, 1/16, one
    stride-2 conv each) adds coarse context: L3 through a residual block, upsampled into L2;
    L2 through two, upsampled into L1 after L1's second of five residual blocks.
    """

    def __init__(self, num_feat: int) -> None:
        super().__init__()
        c = num_feat
        self.conv_first = conv3x3(3, c)
        self.stride_conv_hr1 = conv3x3(c, c, stride=2)
        self.stride_conv_hr2 = conv3x3(c, c, stride=2)
        self.stride_conv_l2 = conv3x3(c, c, stride=2)
        self.stride_conv_l3 = conv3x3(c, c, stride=2)
        self.resblock_l3 = ResidualBlock(c)
        self.resblock_l2_1 = ResidualBlock(c)
        self.resblock_l2_2 = ResidualBlock(c)
        self.resblock_l1 = residual_blocks(c, 5)

    def forward(self, x: Tensor) -> Tensor:
        """Downsample by 4 and deblur; H and W are multiples of 16."""
        l1 = lrelu(self.conv_first(x))
        l1 = lrelu(self.stride_conv_hr2(lrelu(self.stride_conv_hr1(l1))))  # 1/4
        l2 = lrelu(self.stride_conv_l2(l1))
        l3 = lrelu(self.stride_conv_l3(l2))
        l2 = self.resblock_l2_1(l2) + upsample2(self.resblock_l3(l3))
        l1 = self.resblock_l1[:2](l1) + upsample2(self.resblock_l2_2(l2))
        return self.resblock_l1[2:](l1)


class TSAFusion(nn.Module):
    """EDVR's Temporal and Spatial Attention fusion: aligned features (B, T, C, h, w) ->
    fused feature (B, C, h, w); h and w multiples of 4.

    Temporal attention: each aligned frame F_i is weighed per pixel by
    h_i = sigmoid(θ(F_i) · φ(F_ref)) (dot product over channels) and a 1x1 conv fuses them.
    Spatial attention: a mask from the weighted frames, through a two-level pyramid of max
    and average pools (stride 2), scales the fused feature and adds a bias.
    """

    def __init__(self, num_feat: int, num_frame: int) -> None:
        super().__init__()
        c = num_feat
        self.centre = num_frame // 2
        self.temporal_attn1 = conv3x3(c, c)  # φ, the reference's embedding
        self.temporal_attn2 = conv3x3(c, c)  # θ, each frame's embedding
        self.feat_fusion = nn.Conv2d(num_frame * c, c, 1)
        self.spatial_attn1 = nn.Conv2d(num_frame * c, c, 1)
        self.spatial_attn2 = nn.Conv2d(2 * c, c, 1)
        self.spatial_attn3 = conv3x3(c, c)
        self.spatial_attn4 = nn.Conv2d(c, c, 1)
        self.spatial_attn5 = conv3x3(c, c)
        self.spatial_attn_l1 = nn.Conv2d(c, c, 1)
        self.spatial_attn_l2 = conv3x3(2 * c, c)
        self.spatial_attn_l3 = conv3x3(c, c)
        self.spatial_attn_add1 = nn.Conv2d(c, c, 1)
        self.spatial_attn_add2 = nn.Conv2d(c, c, 1)

    @staticmethod
    def _pool(x: Tensor) -> Tensor:
        """Max and average pools (3x3, stride 2) side by side: (C, h, w) -> (2C, h/2, w/2)."""
        return torch.cat((F.max_pool2d(x, 3, 2, 1), F.avg_pool2d(x, 3, 2, 1)), 1)

    def forward(self, aligned: Tensor) -> Tensor:
        """Fuse the aligned frames into one feature."""
        b, t, c, h, w = aligned.shape
        emb_ref = self.temporal_attn1(aligned[:, self.centre])
        emb = self.temporal_attn2(aligned.flatten(0, 1)).view(b, t, c, h, w)
        corr = torch.sigmoid((emb * emb_ref[:, None]).sum(2, keepdim=True))  # (B, T, 1, h, w)
        weighted = (aligned * corr).flatten(1, 2)
        feat = lrelu(self.feat_fusion(weighted))

        attn = lrelu(self.spatial_attn1(weighted))
        attn = lrelu(self.spatial_attn2(self._pool(attn)))  # 1/2
        attn_level = lrelu(self.spatial_attn_l1(attn))
        attn_level = lrelu(self.spatial_attn_l2(self._pool(attn_level)))  # 1/4
        attn_level = upsample2(lrelu(self.spatial_attn_l3(attn_level)))
        attn = lrelu(self.spatial_attn3(attn)) + attn_level
        attn = self.spatial_attn5(upsample2(lrelu(self.spatial_attn4(attn))))
        attn_add = self.spatial_attn_add2(lrelu(self.spatial_attn_add1(attn)))
        # x2: sigmoid(attn) starts near 1/2, so the mask starts near the identity (as EDVR).
        return feat * torch.sigmoid(attn) * 2 + attn_add


class EDVR(nn.Module):
    """EDVR, same-size form: frames (B, T, 3, H, W) in [0, 1] -> the restored centre frame
    (B, 1, 3, H, W).

    ``with_tsa=False`` fuses the aligned frames by one 1x1 conv (stage 1 of the schedule).
    Frames of any size from 16 x 16 up are reflect-padded (right, bottom) to a multiple of 16
    and the output cropped back.
    """

    def __init__(
        self,
        num_feat: int = 64,
        num_frame: int = 5,
        deform_groups: int = 8,
        num_extract_block: int = 5,
        num_reconstruct_block: int = 10,
        with_tsa: bool = True,
        crop_size: int = 224,
    ) -> None:
        super().__init__()
        if num_frame % 2 == 0:
            raise ValueError(
                f"EDVR restores the centre of an odd number of frames; got {num_frame}"
            )
        c = num_feat
        self.num_frame, self.centre, self.with_tsa = num_frame, num_frame // 2, with_tsa
        # Not architecture: the face crop side it is trained on, which ``restore`` cuts faces at.
        self.crop_size = crop_size
        self.predeblur = Predeblur(c)
        self.conv_1x1 = nn.Conv2d(c, c, 1)
        self.feature_extraction = residual_blocks(c, num_extract_block)
        self.pyramid = FeaturePyramid(c)
        self.pcd_align = PCDAlignment(c, deform_groups)
        self.fusion = TSAFusion(c, num_frame) if with_tsa else nn.Conv2d(num_frame * c, c, 1)
        self.reconstruction = residual_blocks(c, num_reconstruct_block)
        self.head = UpsampleX4Head(c)  # its conv_last is zero: a fresh EDVR returns its input
        he_init(self)  # not PyTorch's default: see the module docstring

    @property
    def contract(self) -> RestorerContract:
        """``num_frame`` crops in, the centre one out; no audio, landmarks or side data."""
        return RestorerContract(frames_in=self.num_frame, frames_out=1, crop_size=self.crop_size)

    def forward(self, frames: Tensor) -> Tensor:
        """Restore the centre frame of ``frames``."""
        self._check(frames)
        b, t, _, h, w = frames.shape
        ph, pw = -h % SIZE_MULTIPLE, -w % SIZE_MULTIPLE
        x = F.pad(frames.flatten(0, 1), (0, pw, 0, ph), mode="reflect")
        levels = self.pyramid(self.feature_extraction(self.conv_1x1(self.predeblur(x))))
        ref = [lvl.unflatten(0, (b, t))[:, self.centre].repeat_interleave(t, 0) for lvl in levels]
        aligned = self.pcd_align(levels, ref).unflatten(0, (b, t))
        feat = self.fusion(aligned) if self.with_tsa else self.fusion(aligned.flatten(1, 2))
        out = self.reconstruction(feat)
        out = self.head(out)
        out = x.unflatten(0, (b, t))[:, self.centre] + out  # the global residual
        return out[:, None, :, :h, :w]

    def _check(self, frames: Tensor) -> None:
        """Raise unless ``frames`` has the shape of the contract."""
        if frames.ndim != 5 or frames.shape[1:3] != (self.num_frame, 3):
            raise ValueError(
                f"frames must be (B, {self.num_frame}, 3, H, W); got {tuple(frames.shape)}"
            )
        h, w = frames.shape[-2:]
        if min(h, w) < SIZE_MULTIPLE:
            raise InputError(f"EDVR needs frames of at least 16x16 pixels; got {w}x{h}")

    def dummy_inputs(self, height: int, width: int) -> dict[str, Tensor]:
        """Random forward arguments for one window of ``height`` x ``width`` frames (batch 1)."""
        return {"frames": torch.rand(1, self.num_frame, 3, height, width)}
