"""BasicVSR++ (Chan, Zhou, Xu and Loy, "BasicVSR++: Improving Video Super-Resolution with
Enhanced Propagation and Alignment", CVPR 2022) in its same-size form, a peer of GAVN.

x_i are the LQ frames, g_i their features, s_{i→i∓1} the optical flow that warps frame i∓1
onto frame i (SPyNet(x_i, x_{i∓1}), ``avrestore.models.spynet``), W the backward warp and c
concatenation. Features live at 1/4 of the frame size:

- Feature extraction, same-size form (mmagic's ``is_low_res_input=False``, used by the authors
  for compressed-video enhancement): two stride-2 convs reach 1/4, residual blocks there give g_i.
  The flow is computed on the bicubic-¼ frames, at the features' size.
- Second-order grid propagation: four branches j in turn, backward_1, forward_1, backward_2,
  forward_2, each visiting every frame (backward from the last, forward from the first). At
  frame i of branch j, with f_{i∓1} and f_{i∓2} the branch's features one and two steps back
  (zero where there is none):

      f̄_{i∓1} = W(f_{i∓1}, s_{i→i∓1}),   s_{i→i∓2} = s_{i→i∓1} + W(s_{i∓1→i∓2}, s_{i→i∓1}),
      f̄_{i∓2} = W(f_{i∓2}, s_{i→i∓2}),
      o = c(s_{i→i∓1}, s_{i→i∓2}) + M·tanh(C^o(c(f̄_{i∓1}, g_i, f̄_{i∓2}, s_{i→i∓1}, s_{i→i∓2}))),
      m = σ(C^m(…same…)),
      f̂_i = D(c(f_{i∓1}, f_{i∓2}); o, m)          (flow-guided deformable alignment)
      f_i^j = f̂_i + R^j(c(g_i, f_i^1, …, f_i^{j-1}, f̂_i)),

  with M = ``max_residue_magnitude`` (10) bounding the residue on the flow.

- Reconstruction: c(g_i, f_i^1, …, f_i^4) -> residual blocks -> two x2 pixel-shuffle
  upsamplings -> conv -> conv to RGB, added to x_i.

Readings (each also stated where it is made):
- Window: the dataset gives 2N+5 LQ frames for 2N+1 HQ ones. BasicVSR++ restores every frame
  of its clip; here it propagates over all ``frames_in`` and reconstructs only the centre
  ``frames_out`` (e.g. 15 in, 11 out: the paper-like 15-frame clips of GAVN's protocol, where
  the outer frames are context as in GAVN's window).
- Initialisation: conv_last is zero, so a fresh model returns its input frames exactly (and
  training starts from the identity, not the input plus a random residual); C^o and C^m's
  last layer is zero (as the authors'), so alignment starts as flow warping (o = s, m = ½).
- C^o and C^m are one conv stack whose last layer gives residues and masks together
  (27·G channels), as in the authors' code; R^j reads g_i and every earlier branch's feature at
  frame i, also as their code does.
- Warps of features and flows pad with zeros (the authors' ``flow_warp`` default); SPyNet's
  warps of frames pad with the border value.
- The upsampling head's width follows ``mid_channels``; the reference code fixes it at 64,
  which is the same at paper scale and too costly at full resolution for the small model.
- Frames of any size from 4x4 are reflect-padded (right, bottom) to a multiple of 4 and the
  output cropped back.
- ``flow="dis"``: SPyNet is replaced by fixed DIS flow (OpenCV, design/peers.md §5.5 option 2),
  computed on the full-size frames and averaged over 4x4 blocks (values ÷ 4) to the features'
  size. It is side data ``flow``, (B, 2, frames_in - 1, 2, H, W) as ``dis_flows`` makes it
  (precomputed by a data pipeline); when it is not given the model computes it itself, so
  callers that pass no side data get the same result.
- SPyNet's pretraining (``flow_losses``, the ``flow`` training objective; design/peers.md
  §5.5): no pretrained SPyNet can be downloaded, so ours learns on the training clips, on
  exactly the path BasicVSR++ uses it (bicubic-¼ LQ frames, both directions of each adjacent
  pair). Its target is DIS flow of the clean frames at the same ¼ size (as the ``dis`` option
  makes it), its loss the mean end-point error plus ``PHOTOMETRIC_WEIGHT`` times the
  Charbonnier error of the clean ¼ frame warped by the predicted flow: the pseudo-label
  teaches the flow's layout, the photometric term corrects it where DIS is wrong. The weight
  (10: a 1-pixel error on a face edge changes the warp by ~0.05) is our choice.
  Known-motion pairs are added (``epe_known``, weight 1): an LQ ¼ frame and the same frame
  warped by a random affine flow G (shift up to ``KNOWN_SHIFT`` pixels, rotation up to
  ``KNOWN_ROTATION``, scale within ``KNOWN_SCALE``), whose exact flow is G. The original
  SPyNet learns matching on synthetic pairs (Flying Chairs) before real ones; adjacent
  talking-head frames move less than half a ¼-size pixel, and on them alone our SPyNet stayed
  at zero flow (validation EPE 0.458 after 100 to 400 steps at 1e-4 and 1e-3, what zero flow
  scores; DIS on the LQ frames 0.315). With the pairs, 900 steps at 1e-4 took it to 0.383
  (known motion 1.76 -> 0.93), measured with ``configs/basicvsrpp-small-car-spynet.yaml``.
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from avrestore.errors import InputError
from avrestore.models.blocks import UpsampleX4Head, conv3x3, residual_blocks
from avrestore.models.contract import RestorerContract
from avrestore.models.dcn import ModulatedDeformConv2d
from avrestore.models.losses import charbonnier
from avrestore.models.spynet import SPyNet, dis_flow, flow_warp

SIZE_MULTIPLE = 4  # features are at 1/4: frames are padded to a multiple of it
PHOTOMETRIC_WEIGHT = 10.0  # SPyNet pretraining: EPE + this x photometric error (docstring)
# SPyNet pretraining's known-motion pairs (docstring), in ¼-size pixels, radians, a ratio.
KNOWN_SHIFT, KNOWN_ROTATION, KNOWN_SCALE = 2.0, 0.05, 0.05
BRANCHES = ("backward_1", "forward_1", "backward_2", "forward_2")
FLOWS = ("spynet", "dis")


def dis_flows(frames: Tensor) -> Tensor:
    """DIS flows of a clip (B, T, 3, H, W) in [0, 1]: (B, 2, T-1, 2, H, W) in full-size pixels;
    [:, 0, i] = s_{i→i+1} (warps frame i+1 onto i), [:, 1, i] = s_{i+1→i} (warps i onto i+1)."""
    b, t = frames.shape[:2]
    ref, supp = frames[:, :-1].flatten(0, 1), frames[:, 1:].flatten(0, 1)
    flows = torch.stack((dis_flow(ref, supp), dis_flow(supp, ref)), 1)
    return flows.unflatten(0, (b, t - 1)).transpose(1, 2)


def _padded(frames: Tensor) -> Tensor:
    """Frames (B, T, 3, H, W) reflect-padded right and bottom to a multiple of 4."""
    b, t, _, h, w = frames.shape
    ph, pw = -h % SIZE_MULTIPLE, -w % SIZE_MULTIPLE
    return F.pad(frames.flatten(0, 1), (0, pw, 0, ph), mode="reflect").unflatten(0, (b, t))


def _quarter_frames(frames: Tensor) -> Tensor:
    """Padded frames (B, T, 3, H, W) -> their bicubic-¼ versions, SPyNet's input."""
    b, t, _, h, w = frames.shape
    size = (h // SIZE_MULTIPLE, w // SIZE_MULTIPLE)
    down = F.interpolate(frames.flatten(0, 1), size, mode="bicubic", align_corners=False)
    return down.unflatten(0, (b, t))


def _quarter_flows(flow: Tensor) -> Tensor:
    """Full-size flows (B, 2, T-1, 2, H, W) -> the mean over each 4x4 block, in quarter-size
    pixels: (B, 2, T-1, 2, H/4, W/4)."""
    pooled = F.avg_pool2d(flow.flatten(0, 2), SIZE_MULTIPLE) / SIZE_MULTIPLE
    return pooled.unflatten(0, flow.shape[:3])


def random_affine_flows(n: int, h: int, w: int, device: torch.device | None = None) -> Tensor:
    """n flows (n, 2, h, w) G(p) = t + (sR − I)(p − c) about the centre c, with a uniform
    shift t in ±KNOWN_SHIFT pixels, angle in ±KNOWN_ROTATION and scale s in 1 ± KNOWN_SCALE:
    ``flow_warp(x, G)`` moves x by a known motion, and G is the flow that undoes it."""
    t, angle, scale = (
        (torch.rand(n, *shape, device=device) * 2 - 1) * bound
        for shape, bound in (((2,), KNOWN_SHIFT), ((), KNOWN_ROTATION), ((), KNOWN_SCALE))
    )
    cos, sin = (1 + scale) * angle.cos(), (1 + scale) * angle.sin()
    gy, gx = torch.meshgrid(
        torch.arange(h, device=device) - (h - 1) / 2,
        torch.arange(w, device=device) - (w - 1) / 2,
        indexing="ij",
    )
    fx = (cos - 1).view(n, 1, 1) * gx - sin.view(n, 1, 1) * gy
    fy = sin.view(n, 1, 1) * gx + (cos - 1).view(n, 1, 1) * gy
    return torch.stack((fx, fy), 1) + t.view(n, 2, 1, 1)


class ResidualBlocksWithInputConv(nn.Sequential):
    """conv3x3 (c_in -> c) + leaky ReLU + n residual blocks (BasicVSR's module of that name)."""

    def __init__(self, c_in: int, channels: int, n_blocks: int) -> None:
        super().__init__(
            conv3x3(c_in, channels), nn.LeakyReLU(0.1), residual_blocks(channels, n_blocks)
        )


class SecondOrderDeformableAlignment(ModulatedDeformConv2d):
    """D with C^o and C^m: aligns c(f_{i∓1}, f_{i∓2}) to frame i by a deformable conv whose
    offsets are residues (at most ``max_residue_magnitude`` px) on the two flows."""

    def __init__(self, channels: int, deform_groups: int, max_residue_magnitude: float) -> None:
        super().__init__(2 * channels, channels, 3, padding=1, deform_groups=deform_groups)
        if deform_groups % 2:
            # Half the groups read f_{i∓1} and take s_{i→i∓1}, half f_{i∓2} and s_{i→i∓2}.
            raise ValueError(f"deform_groups must be even, got {deform_groups}")
        self.max_residue_magnitude = max_residue_magnitude
        self.conv_offset = nn.Sequential(
            conv3x3(3 * channels + 4, channels),
            nn.LeakyReLU(0.1),
            conv3x3(channels, channels),
            nn.LeakyReLU(0.1),
            conv3x3(channels, channels),
            nn.LeakyReLU(0.1),
            conv3x3(channels, 27 * deform_groups),  # residues of o (2 x 9G) and m (9G)
        )
        # Zero, as the authors': alignment starts as flow warping (o = s, m = σ(0)).
        nn.init.zeros_(self.conv_offset[-1].weight)
        nn.init.zeros_(self.conv_offset[-1].bias)

    def forward(self, x: Tensor, cond: Tensor, flow_1: Tensor, flow_2: Tensor) -> Tensor:
        """f̂_i from x = c(f_{i∓1}, f_{i∓2}), cond = c(f̄_{i∓1}, g_i, f̄_{i∓2}) and the flows
        s_{i→i∓1}, s_{i→i∓2} (B, 2, h, w) in pixels, (x, y)."""
        o1, o2, mask = self.conv_offset(torch.cat((cond, flow_1, flow_2), 1)).chunk(3, 1)
        residue = self.max_residue_magnitude * torch.tanh(torch.cat((o1, o2), 1))
        r1, r2 = residue.chunk(2, 1)
        # Offsets are (Δy, Δx) per tap and group (dcn.py's layout): the flow flipped to (y, x)
        # and repeated over the taps of each half's groups.
        taps = r1.shape[1] // 2
        offset = torch.cat(
            (r1 + flow_1.flip(1).repeat(1, taps, 1, 1), r2 + flow_2.flip(1).repeat(1, taps, 1, 1)),
            1,
        )
        return super().forward(x, offset, torch.sigmoid(mask))


class BasicVSRPlusPlus(nn.Module):
    """BasicVSR++, same-size form: frames (B, frames_in, 3, H, W) in [0, 1] -> the centre
    ``frames_out`` restored (B, frames_out, 3, H, W). ``flow``: ``spynet`` (learned) or ``dis``
    (fixed DIS flow, side data ``flow``)."""

    def __init__(
        self,
        mid_channels: int = 64,
        num_blocks: int = 7,
        deform_groups: int = 16,
        extract_blocks: int = 5,
        reconstruction_blocks: int = 5,
        max_residue_magnitude: float = 10.0,
        frames_in: int = 15,
        frames_out: int = 11,
        flow: Literal["spynet", "dis"] = "spynet",
        crop_size: int = 224,
    ) -> None:
        super().__init__()
        if flow not in FLOWS:
            raise ValueError(f"flow must be one of {FLOWS}, got {flow!r}")
        if not 1 <= frames_out <= frames_in or (frames_in - frames_out) % 2 or frames_in < 2:
            raise ValueError(
                f"frames_out ({frames_out}) must be the centre of frames_in ({frames_in} >= 2)"
            )
        c = mid_channels
        self.frames_in, self.frames_out = frames_in, frames_out
        self.flow = flow
        # Not architecture: the face crop side it is trained on, which ``restore`` cuts at.
        self.crop_size = crop_size
        self.feat_extract = nn.Sequential(
            conv3x3(3, c, stride=2),
            nn.LeakyReLU(0.1),
            conv3x3(c, c, stride=2),
            nn.LeakyReLU(0.1),
            ResidualBlocksWithInputConv(c, c, extract_blocks),
        )
        self.spynet = SPyNet() if flow == "spynet" else None
        self.deform_align = nn.ModuleDict(
            {
                name: SecondOrderDeformableAlignment(c, deform_groups, max_residue_magnitude)
                for name in BRANCHES
            }
        )
        # R^j reads g_i, the j-1 earlier branches and f̂_i: (2 + j - 1) * C channels.
        self.backbone = nn.ModuleDict(
            {
                name: ResidualBlocksWithInputConv((2 + j) * c, c, num_blocks)
                for j, name in enumerate(BRANCHES)
            }
        )
        self.reconstruction = ResidualBlocksWithInputConv(5 * c, c, reconstruction_blocks)
        # Its conv_last is zero: a fresh model returns its input frames exactly. Its width
        # follows mid_channels (the reference's upconv2 is 64 -> 256 at any width).
        self.head = UpsampleX4Head(c)

    @property
    def contract(self) -> RestorerContract:
        """frames_in crops in, the centre frames_out out; the DIS model's flow as side data."""
        return RestorerContract(
            frames_in=self.frames_in,
            frames_out=self.frames_out,
            crop_size=self.crop_size,
            side_data=("flow",) if self.flow == "dis" else (),
            learned_flow=self.spynet is not None,
        )

    def compute_flow(self, lqs: Tensor, flow: Tensor | None) -> tuple[Tensor, Tensor]:
        """s_{i→i+1} and s_{i+1→i}, each (B, T-1, 2, H/4, W/4) in feature pixels, of the
        padded frames ``lqs`` (B, T, 3, H, W); ``flow``: their DIS flows (``dis_flows``)."""
        if self.spynet is None:
            return _quarter_flows(dis_flows(lqs) if flow is None else flow).unbind(1)
        b, t = lqs.shape[:2]
        lqs_down = _quarter_frames(lqs)
        ref, supp = lqs_down[:, :-1].flatten(0, 1), lqs_down[:, 1:].flatten(0, 1)
        flows_backward = self.spynet(ref, supp).unflatten(0, (b, t - 1))
        flows_forward = self.spynet(supp, ref).unflatten(0, (b, t - 1))
        return flows_backward, flows_forward

    def flow_losses(self, frames: Tensor, hq: Tensor, baselines: bool = False) -> dict[str, Tensor]:
        """SPyNet's pretraining on LQ ``frames`` and their clean ``hq`` (B, T, 3, H, W): ``total``
        = ``epe`` + PHOTOMETRIC_WEIGHT x ``photometric`` + ``epe_known`` (module docstring);
        ``preview``: the first clean frame | the next warped onto it by the prediction | the
        next, at ¼. ``baselines`` adds what ``epe`` is judged against, without gradient: the
        EPE of zero flow (``epe_zero``) and of DIS flow on the LQ frames (``epe_dis_lq``, the
        ``dis`` option's)."""
        if self.spynet is None:
            raise InputError("this BasicVSR++ uses fixed DIS flow: it has no SPyNet to pretrain")
        if frames.shape != hq.shape:
            raise ValueError(f"frames {tuple(frames.shape)} and hq {tuple(hq.shape)} differ")
        lqs, hqs = _padded(frames), _padded(hq)
        predicted = torch.stack(self.compute_flow(lqs, None), 1)  # (B, 2, T-1, 2, h, w)
        target = _quarter_flows(dis_flows(hqs))
        hq_down = _quarter_frames(hqs)
        ref, supp = hq_down[:, :-1].flatten(0, 1), hq_down[:, 1:].flatten(0, 1)
        backward, forward = (f.flatten(0, 1) for f in predicted.unbind(1))  # (B·(T-1), 2, h, w)
        warped = flow_warp(supp, backward)  # frame i+1 onto frame i
        warped_back = flow_warp(ref, forward)  # frame i onto frame i+1
        photometric = (charbonnier(warped, ref) + charbonnier(warped_back, supp)) / 2
        epe = (predicted - target).norm(dim=3).mean()
        # Known motion: moved(p) = lq(p + G(p)), so G warps lq onto moved.
        lq_down = _quarter_frames(lqs).flatten(0, 1)
        motion = random_affine_flows(len(lq_down), *lq_down.shape[-2:], lq_down.device)
        moved = flow_warp(lq_down, motion)
        epe_known = (self.spynet(moved, lq_down) - motion).norm(dim=1).mean()
        terms = {
            "total": epe + PHOTOMETRIC_WEIGHT * photometric + epe_known,
            "epe": epe,
            "photometric": photometric,
            "epe_known": epe_known,
            "preview": torch.cat((ref[0], warped[0], supp[0]), -1).detach(),
        }
        if baselines:
            with torch.no_grad():
                terms["epe_zero"] = target.norm(dim=3).mean()
                terms["epe_dis_lq"] = (_quarter_flows(dis_flows(lqs)) - target).norm(dim=3).mean()
        return terms

    def propagate(self, feats: dict[str, list[Tensor]], flows: Tensor, name: str) -> list[Tensor]:
        """Branch ``name`` over all frames: f_i^j in frame order, given g_i and the earlier
        branches in ``feats`` and the branch's flows (B, T-1, 2, h, w)."""
        g = feats["spatial"]
        t = len(g)
        # d: where the branch's source frame lies; s_{i→i+d} is flows[:, min(i, i + d)].
        d, order = (1, range(t - 1, -1, -1)) if name.startswith("backward") else (-1, range(t))
        earlier = [feats[k] for k in BRANCHES[: BRANCHES.index(name)]]
        align, backbone = self.deform_align[name], self.backbone[name]
        visited: list[Tensor] = []
        f_prop = torch.zeros_like(g[0])  # f_{i∓1}; BasicVSR's zero state at the first frame
        for step, i in enumerate(order):
            if step > 0:
                # Features and flows are warped with zero padding, as the authors' flow_warp.
                s_n1 = flows[:, min(i, i + d)]
                cond_n1 = flow_warp(f_prop, s_n1, "zeros")
                f_n2 = cond_n2 = torch.zeros_like(f_prop)
                s_n2 = torch.zeros_like(s_n1)
                if step > 1:
                    f_n2 = visited[-2]
                    s_prev = flows[:, min(i + d, i + 2 * d)]  # s_{i∓1→i∓2}
                    s_n2 = s_n1 + flow_warp(s_prev, s_n1, "zeros")
                    cond_n2 = flow_warp(f_n2, s_n2, "zeros")
                cond = torch.cat((cond_n1, g[i], cond_n2), 1)
                f_prop = align(torch.cat((f_prop, f_n2), 1), cond, s_n1, s_n2)
            f_prop = f_prop + backbone(torch.cat([g[i], *(f[i] for f in earlier), f_prop], 1))
            visited.append(f_prop)
        return visited[::-1] if d > 0 else visited

    def upsample(self, feats: Tensor, lqs: Tensor) -> Tensor:
        """Reconstruction: c(g_i, f_i^1..4) (N, 5C, h, w) and x_i (N, 3, 4h, 4w) -> y_i."""
        hr = self.reconstruction(feats)
        return lqs + self.head(hr)

    def forward(self, frames: Tensor, flow: Tensor | None = None) -> Tensor:
        """Restore the centre frames; ``flow`` (DIS model only): the clip's ``dis_flows``,
        computed here when not given."""
        self._check(frames, flow)
        b, t, _, h, w = frames.shape
        lqs = _padded(frames)  # the output is cropped back
        if flow is not None:  # padded like the frames (its border value held)
            ph, pw = lqs.shape[-2] - h, lqs.shape[-1] - w
            flow = F.pad(flow.flatten(0, 2), (0, pw, 0, ph), mode="replicate")
            flow = flow.unflatten(0, (b, 2, t - 1))
        flows_backward, flows_forward = self.compute_flow(lqs, flow)
        g = self.feat_extract(lqs.flatten(0, 1)).unflatten(0, (b, t))
        feats = {"spatial": list(g.unbind(1))}
        for name in BRANCHES:
            flows = flows_backward if name.startswith("backward") else flows_forward
            feats[name] = self.propagate(feats, flows, name)
        # Propagation used every frame; only the centre frames_out are reconstructed.
        first = (t - self.frames_out) // 2
        centre = slice(first, first + self.frames_out)
        hr = torch.cat([torch.stack(f[centre], 1) for f in feats.values()], 2)
        out = self.upsample(hr.flatten(0, 1), lqs[:, centre].flatten(0, 1))
        return out.unflatten(0, (b, self.frames_out))[..., :h, :w]

    def _check(self, frames: Tensor, flow: Tensor | None) -> None:
        """Raise unless the inputs have the shapes of the contract."""
        if frames.ndim != 5 or frames.shape[1:3] != (self.frames_in, 3):
            raise ValueError(
                f"frames must be (B, {self.frames_in}, 3, H, W); got {tuple(frames.shape)}"
            )
        b, t, _, h, w = frames.shape
        if min(h, w) < SIZE_MULTIPLE:
            raise InputError(f"BasicVSR++ needs frames of at least 4x4 pixels; got {w}x{h}")
        if flow is not None and self.flow != "dis":
            raise ValueError("only the DIS model (flow='dis') takes flow; SPyNet computes its own")
        if flow is not None and tuple(flow.shape) != (b, 2, t - 1, 2, h, w):
            raise ValueError(f"flow must be {(b, 2, t - 1, 2, h, w)}; got {tuple(flow.shape)}")

    def dummy_inputs(self, height: int, width: int) -> dict[str, Tensor]:
        """Random forward arguments for one clip of ``height`` x ``width`` frames (batch 1)."""
        inputs = {"frames": torch.rand(1, self.frames_in, 3, height, width)}
        if self.flow == "dis":
            inputs["flow"] = torch.randn(1, 2, self.frames_in - 1, 2, height, width)
        return inputs
