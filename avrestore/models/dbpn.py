"""D-DBPN: Dense Deep Back-Projection Network (Haris, Shakhnarovich and Ukita, "Deep
Back-Projection Networks for Super-Resolution", CVPR 2018), as a same-size face restorer.

D-DBPN super-resolves by a factor s with T stages of alternating up- and down-projection units;
n_0 and n_R are the paper's filter counts (initial features, every projection unit):

- Initial feature extraction: conv(3, n_0) then conv(1, n_R) give L⁰ at the low resolution.
- ``UpProjection`` (eqs. 1-5): scale up H⁰_t = (L^{t-1} * p_t)↑s, scale down
  L⁰_t = (H⁰_t * g_t)↓s, residual e^l_t = L⁰_t - L^{t-1}, scale residual up
  H¹_t = (e^l_t * q_t)↑s, output H^t = H⁰_t + H¹_t. The residual is the back-projection
  error: what the scaled-up map fails to explain of its low-resolution source.
- ``DownProjection`` (eqs. 6-10), the mirror: L⁰_t = (H^t * g'_t)↓s, H⁰_t = (L⁰_t * p'_t)↑s,
  e^h_t = H⁰_t - H^t, L¹_t = (e^h_t * g'_t)↓s, L^t = L⁰_t + L¹_t.
- Dense connections (D-DBPN): a unit reads the concatenation of all earlier outputs of the
  opposite resolution ([L¹, ..., L^{t-1}] for an up unit, [H¹, ..., H^t] for a down unit),
  pooled to n_R channels by conv(1, n_R).
- Reconstruction: conv(3, 3) of [H¹, ..., H^T].

The projection convolutions and deconvolutions have the paper's kernel, stride and padding for
s (``PROJECTION_KERNELS``) and each is followed by a PReLU, as every layer but the last.

Readings (our same-size use; the paper up-samples only):
- The H x W frame is pixel-unshuffled by s (3s² channels at H/s x W/s, no information lost),
  D-DBPN x s runs from there, so its units' up-scaling brings it back to H x W, and the input
  frame is added (a global residual, as the official code's ``--residual`` adds the bicubic
  up-sampled input). s = 4 is the paper's main setting, and at 224 it gives the 56 x 56 low
  resolution at which EDVR's HR input path works (``../shared/design/peers.md`` §6).
- Dense units: conv(1, n_R) only where a unit has more than one input map, as the official
  code: the first up and down units and the second up unit read one map (L⁰, H¹, L¹).
- The two ↓s of a down unit (eqs. 6 and 9) and the two ↑s of an up unit (eqs. 1 and 4) have
  separate kernels, as in the official code.
- Initialisation: Kaiming-normal weights and zero biases as the official code, except the
  reconstruction conv, which is zero (our choice), so a fresh DBPN returns its input frame exactly
  and training starts there rather than from the input plus a random residual.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from avrestore.errors import InputError
from avrestore.models.contract import RestorerContract

# s -> (kernel, stride, padding) of every projection conv and deconv (the paper's, as its
# official code sets them): the conv maps s·h to exactly h and the deconv h to exactly s·h,
# so frame sizes need only divide by s.
PROJECTION_KERNELS = {2: (6, 2, 2), 4: (8, 4, 2), 8: (12, 8, 2)}


def _prelu(layer: nn.Module) -> nn.Sequential:
    """``layer`` followed by the paper's PReLU (one slope per layer, as the official code)."""
    return nn.Sequential(layer, nn.PReLU())


def _scale_down(channels: int, scale: int) -> nn.Sequential:
    """↓s: a strided convolution with PReLU, (C, s·h, s·w) -> (C, h, w)."""
    return _prelu(nn.Conv2d(channels, channels, *PROJECTION_KERNELS[scale]))


def _scale_up(channels: int, scale: int) -> nn.Sequential:
    """↑s: a strided deconvolution with PReLU, (C, h, w) -> (C, s·h, s·w)."""
    return _prelu(nn.ConvTranspose2d(channels, channels, *PROJECTION_KERNELS[scale]))


def _feature_pooling(channels: int, n_inputs: int) -> nn.Module:
    """conv(1, n_R) over the concatenated inputs of a dense unit; nothing for a single input."""
    if n_inputs == 1:
        return nn.Identity()
    return _prelu(nn.Conv2d(n_inputs * channels, channels, 1))


class UpProjection(nn.Module):
    """Eqs. 1-5: L^{t-1} (n·C, h, w) -> H^t (C, s·h, s·w); ``n_inputs`` n > 1 is a dense unit."""

    def __init__(self, channels: int, scale: int, n_inputs: int = 1) -> None:
        super().__init__()
        self.pooling = _feature_pooling(channels, n_inputs)
        self.up = _scale_up(channels, scale)  # p_t
        self.down = _scale_down(channels, scale)  # g_t
        self.residual_up = _scale_up(channels, scale)  # q_t

    def forward(self, L: Tensor) -> Tensor:
        """Up-project ``L``, correcting by the up-projected back-projection error."""
        L_prev = self.pooling(L)
        H0 = self.up(L_prev)  # eq. 1
        L0 = self.down(H0)  # eq. 2
        e_l = L0 - L_prev  # eq. 3
        H1 = self.residual_up(e_l)  # eq. 4
        return H0 + H1  # eq. 5


class DownProjection(nn.Module):
    """Eqs. 6-10: H^t (n·C, s·h, s·w) -> L^t (C, h, w); ``n_inputs`` n > 1 is a dense unit."""

    def __init__(self, channels: int, scale: int, n_inputs: int = 1) -> None:
        super().__init__()
        self.pooling = _feature_pooling(channels, n_inputs)
        self.down = _scale_down(channels, scale)  # g'_t of eq. 6
        self.up = _scale_up(channels, scale)  # p'_t
        self.residual_down = _scale_down(channels, scale)  # g'_t of eq. 9 (own weights)

    def forward(self, H: Tensor) -> Tensor:
        """Down-project ``H``, correcting by the down-projected back-projection error."""
        H_t = self.pooling(H)
        L0 = self.down(H_t)  # eq. 6
        H0 = self.up(L0)  # eq. 7
        e_h = H0 - H_t  # eq. 8
        L1 = self.residual_down(e_h)  # eq. 9
        return L0 + L1  # eq. 10


class DBPN(nn.Module):
    """D-DBPN as a same-size restorer: one frame (B, 1, 3, H, W) in [0, 1] -> (B, 1, 3, H, W).

    ``base_filters`` is n_R, ``feature_filters`` n_0, ``stages`` T (T up- and T-1
    down-projection units), ``scale`` s. Frames of any size from s x s up are reflect-padded
    (right, bottom) to a multiple of s and the output cropped back.
    """

    def __init__(
        self,
        base_filters: int = 64,
        feature_filters: int = 256,
        stages: int = 7,
        scale: int = 4,
        crop_size: int = 224,
    ) -> None:
        super().__init__()
        if scale not in PROJECTION_KERNELS:
            raise InputError(f"DBPN scales by {sorted(PROJECTION_KERNELS)}; got {scale}")
        if stages < 1:
            raise InputError(f"DBPN needs at least one stage; got {stages}")
        self.scale = scale
        # Not architecture: the face crop side it is trained on, which ``restore`` cuts faces at.
        self.crop_size = crop_size
        n_R = base_filters
        self.feature0 = _prelu(nn.Conv2d(3 * scale**2, feature_filters, 3, padding=1))
        self.feature1 = _prelu(nn.Conv2d(feature_filters, n_R, 1))
        # Up unit t reads L⁰ (t = 1) or [L¹, ..., L^{t-1}]; down unit t reads [H¹, ..., H^t].
        self.up_projections = nn.ModuleList(
            UpProjection(n_R, scale, max(1, t - 1)) for t in range(1, stages + 1)
        )
        self.down_projections = nn.ModuleList(
            DownProjection(n_R, scale, t) for t in range(1, stages)
        )
        self.reconstruction = nn.Conv2d(stages * n_R, 3, 3, padding=1)
        for m in self.modules():
            if isinstance(m, nn.Conv2d | nn.ConvTranspose2d):
                nn.init.kaiming_normal_(m.weight)
                nn.init.zeros_(m.bias)
        # Zero: a fresh model returns its input frame exactly (see the module docstring).
        nn.init.zeros_(self.reconstruction.weight)

    @property
    def contract(self) -> RestorerContract:
        """One crop in, the same crop restored out; no audio, landmarks or side data."""
        return RestorerContract(frames_in=1, frames_out=1, crop_size=self.crop_size)

    def forward(self, frames: Tensor) -> Tensor:
        """Restore each frame of ``frames`` (B, 1, 3, H, W)."""
        self._check(frames)
        h, w = frames.shape[-2:]
        s = self.scale
        x = F.pad(frames[:, 0], (0, -w % s, 0, -h % s), mode="reflect")
        L0 = self.feature1(self.feature0(F.pixel_unshuffle(x, s)))
        H = [self.up_projections[0](L0)]  # H¹
        L: list[Tensor] = []
        for up, down in zip(self.up_projections[1:], self.down_projections, strict=True):
            L.append(down(torch.cat(H, 1)))  # L^t from [H¹, ..., H^t]
            H.append(up(torch.cat(L, 1)))  # H^{t+1} from [L¹, ..., L^t]
        out = x + self.reconstruction(torch.cat(H, 1))
        return out[..., :h, :w].unsqueeze(1)

    def _check(self, frames: Tensor) -> None:
        """Raise unless ``frames`` is (B, 1, 3, H, W) with H, W >= s."""
        if frames.ndim != 5 or frames.shape[1:3] != (1, 3):
            raise ValueError(f"frames must be (B, 1, 3, H, W); got {tuple(frames.shape)}")
        h, w = frames.shape[-2:]
        if min(h, w) < self.scale:
            raise InputError(
                f"DBPN x{self.scale} needs frames of at least {self.scale}x{self.scale} pixels;"
                f" got {w}x{h}"
            )

    def dummy_inputs(self, height: int, width: int) -> dict[str, Tensor]:
        """Random forward arguments for one ``height`` x ``width`` frame (batch 1)."""
        return {"frames": torch.rand(1, 1, 3, height, width)}
