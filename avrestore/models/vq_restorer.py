"""The audio-guided VQ-codebook restorer (Sun, "Research on Real-scene Video Face Restoration
Methods Based on Time Consistency and Multimodal Fusion", JCEIM 2025).

A frozen, pre-trained TS-VQGAN (``ts_vqgan``) draws the face; what is learned is which of its
codes to draw, predicted from the degraded frames' HOG and the speech, and a light modulation of
its decoder. For the T_out = 3 restored frames t-1, t, t+1 of a window of T_in = 3 + 2Δ degraded
frames (Δ = 2: 7 in, 3 out, as the project's other 7 → 3 peers; frame i's 5-frame context
reaches i ± 2):

- §3.1 preprocessing: F_HOG = FHOG of each degraded frame, cell 4 (``fhog``: 31 channels,
  56 x 56 at 224); M_i = the 5 consecutive 80-D MFCC steps (25 ms / 10 ms) centred on frame i.
- eq. 2: z_l = g(F_HOG) (``HOGEncoder``), h(M_i) a fully connected map to d (``AudioProjection``),
  f_i = Concat(z_l^(i), h(M_i)) (h broadcast over the cells).
- eq. 3: ẑ_q^(i) = 3D-CNN(f_{i-Δ..i+Δ}): three Conv3d 3x3x3 (stride 1, pad 1) + BatchNorm + ReLU
  blocks over the 5-frame window of each predicted frame, no temporal down-sampling; its centre
  frame is pooled to the code grid and a 1x1 conv gives K logits per code position
  (``CodePredictor``).
- The TS-VQGAN decoder (frozen) decodes the 3 predicted code maps as one clip (its temporal
  attention spans the 3 frames).
- eq. 5: at decoder levels 28², 56² and 112² (``fidelity_factors`` 8, 4, 2) the features are
  modulated x̃_d^t = α_t · x_d^t + β_t (``FidelityModulation``), α, β from the level's features
  of frames t-1, t, t+1 (temporal dimension compressed by one convolution), h(M_t) and the
  optical flows F_{t-1→t}, F_{t+1→t} of the degraded frames.
- eq. 4 (inference only): x̂_t^smooth = γ x̂_t + (1 − γ) warp(x̂_{t+1}, F), γ = 0.7.
- §4 losses (``losses``): eq. 6 L1, eq. 7 alignment, eq. 8 1 − SSIM of consecutive outputs,
  eq. 9 weights 1.0 / 0.5 / 0.2; the cross-entropy of the predicted codes against the clean
  frames' codes is added (below).

Readings where the paper leaves a choice or contradicts itself (design/peers.md §3.6):

- Eq. 3's output: the paper pools "along spatial dimensions" to one vector and one index per
  frame, which cannot drive a decoder that needs a code per latent position. Here the centre
  frame's features are average-pooled to the code grid (f/4 x f/4 HOG cells per code: 4 x 4 for
  the paper-scale TS-VQGAN's f = 16, 2 x 2 for ts-vqgan-small's f = 8) and classified per
  position by a 1x1 conv.
- Each predicted frame's 3D-CNN sees exactly its own window f_{i-Δ..i+Δ} (zero padding at the
  window's temporal ends), as the paper's "access 5 consecutive frames per prediction step";
  the three windows of a 7-frame input are run as three batch items.
- Training the argmax: the paper lists only L1, alignment and smoothing, through which no
  gradient reaches the predictor. Added (a deviation): cross-entropy against the codes the
  frozen encoder gives the clean frames (PGTFormer's and CodeFormer's stage II), and a
  straight-through softmax for the decoder stage: the forward pass looks up the argmax code,
  the gradient flows as if it had looked up the softmax mixture of codes.
- z_l: "the HOG features are encoded as z_l", of the dimension d of h(M); here two 3x3 convs
  (31 → d → d, ReLU between). h: BatchNorm over each MFCC coefficient (c0, the log energy,
  dwarfs the rest), then one Linear(5·80 → d).
- The paper's "we input the aligned frames into the pre-trained TS-VQGAN encoder" is not used
  by eq. 2; the encoder serves only to make the target codes of the clean frames. ``lq_latent``
  (not the paper's; design/peers.md §3.6 offers it as the stronger variant) adds the frozen
  encoder's output of the degraded frames to eq. 2's features, repeated to the HOG cells: HOG
  is blind to colour and brightness, the encoder's latent is not.
- Audio of the context frames: a caller gives, per restored frame, a window of 21 MFCC steps
  (the contract's ``AudioInput(21, 80)``); M_i of frame i is its 5 centre steps, and M of a
  context frame i ± k is the 5 steps centred k·``steps_per_frame`` (4 at 25 fps: 40 ms / 10 ms)
  away in the nearest restored frame's window. Exact at 25 fps; at 30 fps the neighbours'
  centres are up to 1.3 steps off.
- Eq. 7: z_l is a map and h(M) a vector; z_l is average-pooled over the cells and both are
  L2-normalised before the hinge with margin 1 (unnormalised distances would meet any margin
  by scaling). Negatives M': given by the caller (§3.1: the same speaker's audio, another
  time) or, by default, the other items of the batch (§5.3's "other identities in the batch").
- Eq. 5: α and β come from conv3x3(ReLU(temporal conv3x3 of [x^{t-1}, x^t, x^{t+1}] + a
  linear map of h(M_t) + conv3x3 of the 4 flow channels, resized to the level and scaled)):
  one hidden layer of ``fidelity_channels``; at a clip's ends the missing neighbour is the
  frame itself. The α and β convs start at zero weight with bias 1 and 0: a fresh modulation is
  the identity and training starts from the plain decoder. ``fidelity_lq`` adds the degraded
  frame, resized, to the condition (not in the paper: otherwise nothing of the degraded frame
  but its flow and codes reaches the decoder).
- Flows: Farneback (OpenCV, the paper's choice) on the degraded frames, pyramid 0.5 x 3 levels,
  window 15, 3 iterations, poly_n 5, σ 1.2 (``farneback_flows``; not differentiable, so the
  model takes them as an input and computes them only when none are given). F_{t±1→t} of eq. 5
  and F of eq. 4 are the backward-warp flows on frame t's grid: x_{t±1}(p + F(p)) ≈ x_t(p).
- Eq. 4 within a window: the last restored frame has no restored successor; it is smoothed
  with its predecessor instead (γ x̂_t + (1 − γ) warp(x̂_{t-1}, F_{t→t-1})), so every output
  frame is blended once. Applied in eval mode only (the paper: at inference); evaluation can
  switch it off (``ablate``: ``smoothing``) and apply ``smooth_sequence`` to the whole restored
  video instead, which is eq. 4 exactly (last video frame unchanged).
- Eq. 8, 1 − SSIM(x̂_t, x̂_{t+1}): x̂_{t+1} is warped onto frame t first, by eq. 4's flow
  F_{t→t+1} (``smoothing_loss``): as written it penalises real motion too. It is computed in
  float32 outside autocast (``ssim_fp32``): under bf16 the SSIM of a training batch read 0.13
  where float32 gives 0.06, and its gradient pushed the decoder away from its targets (the L1
  term rose from 0.049 to 0.11 in 10 Adam steps on one batch, where float32 took it to 0.033).

Ablations (the paper's table 3/4): ``use_audio=False`` (w/o audio), ``temporal=False`` (the 2D-CNN
variant: 1x3x3 kernels), and at evaluation ``modulation`` and ``smoothing`` switched off (w/o
temporal smoothing: both).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from avrestore.errors import InputError
from avrestore.models.blocks import conv3x3
from avrestore.models.contract import AudioInput, RestorerContract
from avrestore.models.fhog import CELL, N_FHOG, fhog
from avrestore.models.losses import ssim_fp32
from avrestore.models.spynet import _gray_u8, flow_warp
from avrestore.models.ts_vqgan import CLIP_FRAMES, TSVQGAN

GAMMA = 0.7  # eq. 4's smoothing factor (the paper's choice among 0.5-0.9)
PAPER_MFCC = 80  # the paper's MFCC dimension
PAPER_MFCC_STEPS = 5  # M_i: 5 consecutive 10 ms steps per frame
# ts-vqgan-small's: 28 x 28 codes at 224 (f = 8; the reason is in ts_vqgan's docstring).
SMALL_VQGAN: dict[str, Any] = {"ch": 32, "ch_mult": [1, 2, 2, 4], "z_dim": 64, "n_codes": 512}
PAPER_VQGAN: dict[str, Any] = {"ch": 64, "ch_mult": [1, 2, 2, 4, 4], "z_dim": 256, "n_codes": 1024}


@dataclass(frozen=True)
class LossWeights:
    """Eq. 9's λ1 (L1), λ2 (alignment), λ3 (smoothing), and the added cross-entropy."""

    pixel: float = 1.0
    align: float = 0.5
    smooth: float = 0.2
    ce: float = 0.5  # in the decoder stage; the code stage weighs it 1
    margin: float = 1.0  # eq. 7's margin


# ---------------------------------------------------------------------------------------------
# Optical flow (OpenCV, outside the model's torch graph) and eq. 4.


def farneback_flow(ref: Tensor, other: Tensor) -> Tensor:
    """Farneback flow of pairs (N, 3, H, W) in [0, 1]: (N, 2, H, W) float32, pixels, (x, y), on
    ``ref``'s grid, such that other(p + flow(p)) ≈ ref(p) (``flow_warp(other, flow)`` ≈ ref)."""
    flows = [
        cv2.calcOpticalFlowFarneback(r, o, None, 0.5, 3, 15, 3, 5, 1.2, 0)
        for r, o in zip(_gray_u8(ref), _gray_u8(other), strict=True)
    ]
    return torch.from_numpy(np.stack(flows)).permute(0, 3, 1, 2).to(ref.device)


def farneback_flows(frames: Tensor, frames_out: int) -> Tensor:
    """The flows the restorer takes, from its degraded input (B, T_in, 3, H, W): for each of the
    ``frames_out`` centre frames t, (F_{t→t-1}, F_{t→t+1}), (B, frames_out, 2, 2, H, W)."""
    b, t_in = frames.shape[:2]
    first = (t_in - frames_out) // 2
    if first < 1:
        raise ValueError(f"{t_in} frames leave no neighbour around {frames_out} centre ones")
    centre = frames[:, first : first + frames_out].flatten(0, 1)
    prev = frames[:, first - 1 : first - 1 + frames_out].flatten(0, 1)
    nxt = frames[:, first + 1 : first + 1 + frames_out].flatten(0, 1)
    flows = torch.stack((farneback_flow(centre, prev), farneback_flow(centre, nxt)), 1)
    return flows.unflatten(0, (b, frames_out))


def smooth_sequence(frames: Tensor, flows_next: Tensor, gamma: float = GAMMA) -> Tensor:
    """Eq. 4 over a restored video (T, 3, H, W): x_t ← γ x_t + (1 − γ) warp(x_{t+1}, F_{t→t+1})
    with ``flows_next`` (T-1, 2, H, W); the last frame is unchanged."""
    if len(frames) < 2:
        return frames
    warped = flow_warp(frames[1:], flows_next)
    return torch.cat((gamma * frames[:-1] + (1 - gamma) * warped, frames[-1:]))


def smooth_window(frames: Tensor, flows: Tensor, gamma: float = GAMMA) -> Tensor:
    """Eq. 4 inside one window (B, T, 3, H, W) with the flows (B, T, 2, 2, H, W) of
    ``farneback_flows``: each frame blended with its warped successor, the last with its
    predecessor (module docstring)."""
    t = frames.shape[1]
    if t < 2:
        return frames
    out = []
    for j in range(t):
        k, which = (j + 1, 1) if j + 1 < t else (j - 1, 0)
        warped = flow_warp(frames[:, k], flows[:, j, which])
        out.append(gamma * frames[:, j] + (1 - gamma) * warped)
    return torch.stack(out, 1)


def smoothing_loss(frames: Tensor, flows: Tensor) -> Tensor:
    """Eq. 8, 1 − SSIM(x̂_t, warp(x̂_{t+1}, F_{t→t+1})), over the consecutive pairs of restored
    windows (B, T, 3, H, W) with the flows (B, T, 2, 2, H, W) of ``farneback_flows``; SSIM in
    float32 (``ssim_fp32``)."""
    successor = flow_warp(frames[:, 1:].flatten(0, 1), flows[:, :-1, 1].flatten(0, 1))
    return 1 - ssim_fp32(frames[:, :-1].flatten(0, 1), successor)


# ---------------------------------------------------------------------------------------------
# Eqs. 2-3: the code predictor.


class HOGEncoder(nn.Module):
    """g: F_HOG (N, 31, h, w) -> z_l (N, d, h, w), two 3x3 convs with a ReLU between."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.conv1 = conv3x3(N_FHOG, dim)
        self.conv2 = conv3x3(dim, dim)

    def forward(self, hog: Tensor) -> Tensor:
        """z_l of each frame."""
        return self.conv2(F.relu(self.conv1(hog)))


class AudioProjection(nn.Module):
    """h: M_i (N, steps, n_mfcc) -> h(M_i) (N, d): BatchNorm per coefficient, one Linear."""

    def __init__(self, steps: int, n_mfcc: int, dim: int) -> None:
        super().__init__()
        self.norm = nn.BatchNorm1d(n_mfcc)
        self.linear = nn.Linear(steps * n_mfcc, dim)

    def forward(self, mfcc: Tensor) -> Tensor:
        """The d-vector of each MFCC segment."""
        x = self.norm(mfcc.transpose(1, 2)).transpose(1, 2)
        return self.linear(x.flatten(1))


class CodePredictor(nn.Module):
    """Eq. 3: f_{i-Δ..i+Δ} (N, 2d, 2Δ+1, h, w) -> logits over the K codes (N, K, h/p, w/p) of
    frame i: three [Conv3d 3x3x3, BatchNorm3d, ReLU], the centre frame, p x p average pooling,
    a 1x1 conv. ``temporal=False``: 1x3x3 kernels (the paper's 2D-CNN ablation)."""

    def __init__(
        self, c_in: int, channels: int, n_codes: int, pool: int, temporal: bool = True
    ) -> None:
        super().__init__()
        kernel, pad = ((3, 3, 3), (1, 1, 1)) if temporal else ((1, 3, 3), (0, 1, 1))
        layers: list[nn.Module] = []
        for c in (c_in, channels, channels):
            layers += [
                nn.Conv3d(c, channels, kernel, 1, pad),
                nn.BatchNorm3d(channels),
                nn.ReLU(inplace=True),
            ]
        self.cnn = nn.Sequential(*layers)
        self.pool = pool
        self.classifier = nn.Conv2d(channels, n_codes, 1)

    def forward(self, f: Tensor) -> Tensor:
        """Code logits of each window's centre frame."""
        y = self.cnn(f)[:, :, f.shape[2] // 2]
        return self.classifier(F.avg_pool2d(y, self.pool))


# ---------------------------------------------------------------------------------------------
# Eq. 5: spatio-temporal fidelity modulation of the decoder.


class FidelityModulation(nn.Module):
    """Eq. 5 at one decoder level: x̃_d^t = α_t ⊙ x_d^t + β_t, α and β (C, h, w) from the
    level's features of t-1, t, t+1, h(M_t) and the flows; identity at initialisation."""

    def __init__(self, channels: int, hidden: int, audio_dim: int, lq: bool = False) -> None:
        super().__init__()
        self.temporal = conv3x3(3 * channels, hidden)  # compresses (x^{t-1}, x^t, x^{t+1})
        self.audio = nn.Linear(audio_dim, hidden, bias=False)
        self.motion = conv3x3(4 + (3 if lq else 0), hidden, bias=False)
        self.alpha = conv3x3(hidden, channels)
        self.beta = conv3x3(hidden, channels)
        for conv, bias in ((self.alpha, 1.0), (self.beta, 0.0)):
            nn.init.zeros_(conv.weight)
            nn.init.constant_(conv.bias, bias)

    def forward(
        self,
        x: Tensor,
        frames: int,
        audio: Tensor | None,
        flows: Tensor,
        lq: Tensor | None = None,
    ) -> Tensor:
        """Modulate x (B*T, C, h, w) of clips of ``frames``; audio h(M_t) (B*T, d) or None;
        flows (B*T, 4, H, W) at the frame size; lq (B*T, 3, H, W) when built with ``lq``."""
        bt, c, h, w = x.shape
        clip = x.view(bt // frames, frames, c, h, w)
        prev = torch.cat((clip[:, :1], clip[:, :-1]), 1)  # the clip's ends: the frame itself
        nxt = torch.cat((clip[:, 1:], clip[:, -1:]), 1)
        cond = self.temporal(torch.cat((prev, clip, nxt), 2).flatten(0, 1))
        if audio is not None:
            cond = cond + self.audio(audio)[:, :, None, None]
        scale = flows.new_tensor([w / flows.shape[-1], h / flows.shape[-2]]).repeat(2)
        motion = F.adaptive_avg_pool2d(flows, (h, w)) * scale.view(1, 4, 1, 1)
        if lq is not None:
            motion = torch.cat((motion, F.adaptive_avg_pool2d(lq, (h, w))), 1)
        cond = F.relu(cond + self.motion(motion))
        return self.alpha(cond) * x + self.beta(cond)  # eq. 5


# ---------------------------------------------------------------------------------------------
# The restorer.


class VQRestorer(nn.Module):
    """Degraded frames (B, 3 + 2Δ, 3, H, W) in [0, 1], per restored frame a 21-step 80-D MFCC
    window, optionally the flows of ``farneback_flows`` -> the 3 restored centre frames
    (B, 3, 3, H, W). Frames of any size from 16 up are reflect-padded to a multiple of 16.

    ``vqgan``: the TS-VQGAN's arguments (``SMALL_VQGAN`` by default); ``vqgan_weights``: its
    trained weights file (or shipped name), loaded at construction. The TS-VQGAN is frozen:
    its parameters do not require gradients and it stays in eval mode; a training stage must
    also freeze the prefix ``vqgan`` (``losses`` refuses to run otherwise; the contract's
    ``frozen`` says so to the trainer).
    """

    # Constructor arguments that name a weights file it loads: a saved restorer holds those
    # tensors itself, so the spec saved with it leaves them out and loading it needs no other
    # file (``train.schema.portable_spec``).
    weights_args: tuple[str, ...] = ("vqgan_weights",)

    def __init__(
        self,
        vqgan: dict[str, Any] | None = None,
        vqgan_weights: str | None = None,
        feature_dim: int = 64,
        cnn_channels: int = 64,
        delta: int = 2,
        temporal: bool = True,
        n_mfcc: int = PAPER_MFCC,
        mfcc_steps: int = PAPER_MFCC_STEPS,
        steps_per_frame: int = 4,
        use_audio: bool = True,
        fidelity_factors: tuple[int, ...] = (8, 4, 2),
        fidelity_channels: int = 32,
        fidelity_lq: bool = False,
        lq_latent: bool = False,
        gamma: float = GAMMA,
        crop_size: int = 224,
    ) -> None:
        super().__init__()
        self.vqgan = TSVQGAN(**(SMALL_VQGAN if vqgan is None else vqgan))
        if vqgan_weights is not None:
            self.load_vqgan(vqgan_weights)
        self.vqgan.requires_grad_(False)
        self.vqgan.eval()
        self.delta, self.frames_out = delta, CLIP_FRAMES
        self.frames_in = CLIP_FRAMES + 2 * delta
        self.n_mfcc, self.mfcc_steps, self.steps_per_frame = n_mfcc, mfcc_steps, steps_per_frame
        # Per restored frame, enough steps to cut M of the context frames Δ away (docstring).
        self.audio_window = mfcc_steps + 2 * delta * steps_per_frame
        self.use_audio, self.gamma, self.crop_size = use_audio, gamma, crop_size
        self.size_multiple = self.vqgan.downsample
        if self.size_multiple % CELL:
            raise ValueError(f"the VQGAN's factor {self.size_multiple} is not a multiple of {CELL}")
        d = feature_dim
        self.hog_encoder = HOGEncoder(d)  # g
        self.audio_proj = AudioProjection(mfcc_steps, n_mfcc, d) if use_audio else None  # h
        self.lq_latent = lq_latent
        c_in = 2 * d + (self.vqgan.z_dim if lq_latent else 0)
        self.predictor = CodePredictor(
            c_in, cnn_channels, self.vqgan.n_codes, self.size_multiple // CELL, temporal
        )
        widths = dict(zip(self.vqgan.decoder.factors, self.vqgan.decoder.widths, strict=True))
        unknown = set(fidelity_factors) - set(widths)
        if unknown:
            raise ValueError(f"no decoder level at factors {sorted(unknown)}; has {sorted(widths)}")
        self.fidelity = nn.ModuleDict(
            {
                str(f): FidelityModulation(widths[f], fidelity_channels, d, fidelity_lq)
                for f in fidelity_factors
            }
        )
        self.fidelity_lq = fidelity_lq
        # Evaluation switches (``ablate``).
        self.modulation_off = False
        self.smoothing_off = False

    def load_vqgan(self, path: str) -> None:
        """Load trained TS-VQGAN weights (a ``ts-vqgan*`` weights file or shipped name)."""
        from avrestore.models.weights import load_weights, read_metadata, weights_path

        p = weights_path(path)
        read_metadata(p)  # one clear line for a missing or damaged file
        try:
            load_weights(self.vqgan, p)
        except RuntimeError as e:
            first = str(e).strip().splitlines()[0]
            raise InputError(f"{p} does not fit this restorer's TS-VQGAN: {first}") from None

    def train(self, mode: bool = True) -> VQRestorer:
        """Train or eval mode for the restorer's own modules; the TS-VQGAN stays in eval."""
        super().train(mode)
        self.vqgan.eval()
        return self

    @property
    def contract(self) -> RestorerContract:
        """3 + 2Δ degraded crops in, the 3 centre ones out; per restored frame 21 MFCC steps
        of 80 coefficients; audio, modulation and smoothing can be switched off. It trains on
        sides that are multiples of 16 with its TS-VQGAN frozen."""
        audio = AudioInput(self.audio_window, self.n_mfcc) if self.use_audio else None
        ablations = ("audio",) if self.use_audio else ()
        return RestorerContract(
            frames_in=self.frames_in,
            frames_out=self.frames_out,
            crop_size=self.crop_size,
            audio=audio,
            ablations=(*ablations, "modulation", "smoothing"),
            train_multiple=self.size_multiple,
            frozen=("vqgan.",),
        )

    @contextlib.contextmanager
    def ablate(self, parts: frozenset[str]) -> Iterator[None]:
        """Run with ``parts`` switched off: ``modulation`` (eq. 5) and/or ``smoothing`` (eq. 4).
        The audio is switched off by not passing it."""
        unknown = set(parts) - {"modulation", "smoothing"}
        if unknown:
            raise ValueError(f"the VQ restorer cannot switch off {sorted(unknown)} inside itself")
        self.modulation_off = "modulation" in parts
        self.smoothing_off = "smoothing" in parts
        try:
            yield
        finally:
            self.modulation_off = self.smoothing_off = False

    # -- eqs. 2-3 ------------------------------------------------------------------------------

    def frame_audio(self, audio: Tensor) -> Tensor:
        """M_i of every input frame (B, T_in, steps, n_mfcc), cut from the windows (B, T_out,
        W_a, n_mfcc) of the restored frames (module docstring)."""
        t_out, steps = audio.shape[1], self.mfcc_steps
        j = torch.arange(t_out + 2 * self.delta, device=audio.device)
        owner = (j - self.delta).clamp(0, t_out - 1)  # the nearest restored frame
        offset = j - self.delta - owner  # frames from it, -Δ..Δ
        start = self.audio_window // 2 + offset * self.steps_per_frame - steps // 2
        rows = start[:, None] + torch.arange(steps, device=audio.device)
        return audio[:, owner[:, None], rows]

    def encode_inputs(
        self, frames: Tensor, audio: Tensor | None, audio_mask: Tensor | None
    ) -> tuple[Tensor, Tensor | None]:
        """z_l (B, T_in, d, H/4, W/4) of the frames and h(M_i) (B, T_in, d) (None without
        audio; zero for items whose ``audio_mask`` is false)."""
        b, t = frames.shape[:2]
        z_l = self.hog_encoder(fhog(frames.flatten(0, 1))).unflatten(0, (b, t))
        if self.audio_proj is None or audio is None:
            return z_l, None
        h = self.audio_proj(self.frame_audio(audio).flatten(0, 1)).unflatten(0, (b, t))
        if audio_mask is not None:
            h = h * audio_mask.to(h.dtype)[:, None, None]
        return z_l, h

    def lq_latent_map(self, frames: Tensor) -> Tensor:
        """The frozen encoder's z_e (B, T_in, d_z, H/4, W/4) of the degraded frames, repeated
        from the code grid to the HOG cells: what ``lq_latent`` adds to eq. 2's features."""
        with torch.no_grad():
            z = self.vqgan.encode(frames)
        r = self.size_multiple // CELL
        return z.repeat_interleave(r, -2).repeat_interleave(r, -1)

    def code_logits(self, z_l: Tensor, h: Tensor | None, frames: Tensor) -> Tensor:
        """Eqs. 2-3: logits (B, T_out, K, h, w) of the restored frames' codes; ``frames``, the
        degraded ones, are read with ``lq_latent`` only."""
        b, t_in = z_l.shape[:2]
        audio = torch.zeros_like(z_l) if h is None else h[..., None, None].expand_as(z_l)
        f = torch.cat((z_l, audio), 2)  # eq. 2, (B, T_in, 2d, h, w)
        if self.lq_latent:
            f = torch.cat((f, self.lq_latent_map(frames).to(f.dtype)), 2)
        t_out, span = t_in - 2 * self.delta, 2 * self.delta + 1
        windows = torch.stack([f[:, i : i + span] for i in range(t_out)], 1)
        logits = self.predictor(windows.flatten(0, 1).transpose(1, 2))  # eq. 3
        return logits.unflatten(0, (b, t_out))

    # -- decoding and eq. 5 --------------------------------------------------------------------

    def lookup(self, logits: Tensor) -> Tensor:
        """z_q (B, T, d, h, w) of logits (B, T, K, h, w): the argmax codes; in training mode
        with the straight-through softmax's gradient."""
        codebook = self.vqgan.quantizer.codebook.to(logits.dtype)
        codes = logits.argmax(2)
        hard = self.vqgan.embed(codes).to(logits.dtype)
        if not (self.training and torch.is_grad_enabled()):
            return hard
        soft = torch.einsum("btkhw,kd->btdhw", logits.softmax(2), codebook)
        return hard + soft - soft.detach()

    def draw(
        self, z_q: Tensor, h: Tensor | None, flows: Tensor, lq: Tensor | None = None
    ) -> Tensor:
        """Decode z_q (B, T, d, h, w) through the frozen decoder, modulated (eq. 5) by h(M_t)
        (B, T, d) and the flows (B, T, 2, 2, H, W); lq (B, T, 3, H, W) with ``fidelity_lq``."""
        t = z_q.shape[1]
        audio = None if h is None else h.flatten(0, 1)
        flat_flows = flows.flatten(0, 1).flatten(1, 2)
        flat_lq = lq.flatten(0, 1) if (self.fidelity_lq and lq is not None) else None

        def modulate(factor: int, x: Tensor) -> Tensor:
            key = str(factor)
            if self.modulation_off or key not in self.fidelity:
                return x
            return self.fidelity[key](x, t, audio, flat_flows, flat_lq)

        return self.vqgan.decode(z_q, modulate)[0]

    # -- the model ----------------------------------------------------------------------------

    def forward(
        self,
        frames: Tensor,
        audio: Tensor | None = None,
        flows: Tensor | None = None,
        audio_mask: Tensor | None = None,
        crop: Tensor | None = None,
    ) -> Tensor:
        """Restore the 3 centre frames. ``audio`` (B, 3, 21, 80); ``flows`` (B, 3, 2, 2, H, W)
        as ``farneback_flows`` gives them (computed here when None); ``audio_mask`` (B,): which
        items have speech. ``crop`` is accepted and unused (HOG and codes are local)."""
        del crop
        self._check(frames, audio, flows)
        b, m, _, h, w = frames.shape
        if flows is None:
            flows = farneback_flows(frames, self.frames_out)
        s = self.size_multiple
        ph, pw = -h % s, -w % s
        x = F.pad(frames.flatten(0, 1), (0, pw, 0, ph), mode="reflect").unflatten(0, (b, m))
        fl = F.pad(flows.flatten(0, 2), (0, pw, 0, ph), mode="replicate")
        fl = fl.unflatten(0, flows.shape[:3])
        z_l, hm = self.encode_inputs(x, audio, audio_mask)
        centre = slice(self.delta, self.delta + self.frames_out)
        z_q = self.lookup(self.code_logits(z_l, hm, x))
        out = self.draw(z_q, None if hm is None else hm[:, centre], fl, x[:, centre])
        if not self.training and not self.smoothing_off:
            out = smooth_window(out, fl, self.gamma)  # eq. 4, inference only
        return out[..., :h, :w]

    def losses(
        self,
        frames: Tensor,
        hq: Tensor,
        audio: Tensor | None = None,
        stage: str = "full",
        audio_neg: Tensor | None = None,
        flows: Tensor | None = None,
        audio_mask: Tensor | None = None,
        weights: LossWeights = LossWeights(),
    ) -> dict[str, Tensor]:
        """The training objective on degraded frames (B, 3 + 2Δ, 3, H, W) and the clean centre
        frames ``hq`` (B, 3, 3, H, W), sides multiples of 16; ``total`` and its terms.

        ``stage="codes"``: CE(logits, codes of hq) + λ2·L_align, no decoder in the loop;
        ``stage="full"``: λ1·L1 + λ2·L_align + λ3·L_smooth (eq. 9) + λ_ce·CE through the frozen
        decoder. ``audio_neg`` (B, 3, 21, 80): the interference audio M' of eq. 7; without it
        the other items of the batch serve (no alignment term for a batch of one).
        """
        if stage not in ("codes", "full"):
            raise ValueError(f"stage is 'codes' or 'full', got {stage!r}")
        if any(p.requires_grad for p in self.vqgan.parameters()):
            raise InputError("the TS-VQGAN must stay frozen: freeze the parameter prefix 'vqgan'")
        self._check(frames, audio, flows)
        s = self.size_multiple
        if frames.shape[-2] % s or frames.shape[-1] % s or hq.shape[1] != self.frames_out:
            raise ValueError(f"training frames must be multiples of {s}, hq (B, 3, 3, H, W)")
        target = self.vqgan.codes(hq)  # the clean frames' codes, (B, 3, h, w)
        z_l, hm = self.encode_inputs(frames, audio, audio_mask)
        logits = self.code_logits(z_l, hm, frames)
        ce = F.cross_entropy(logits.flatten(0, 1), target.flatten(0, 1))
        centre = slice(self.delta, self.delta + self.frames_out)
        align = self._alignment(z_l[:, centre], hm, audio_neg, audio_mask, weights.margin)
        terms = {
            "ce": ce,
            "align": align,
            "code_accuracy": (logits.argmax(2) == target).float().mean().detach(),
        }
        if stage == "codes":
            return {"total": ce + weights.align * align, **terms}
        if flows is None:
            flows = farneback_flows(frames, self.frames_out)
        out = self.draw(
            self.lookup(logits), None if hm is None else hm[:, centre], flows, frames[:, centre]
        )
        pixel = F.l1_loss(out, hq)  # eq. 6
        smooth = smoothing_loss(out, flows)  # eq. 8
        total = (
            weights.pixel * pixel
            + weights.align * align
            + weights.smooth * smooth
            + weights.ce * ce
        )  # eq. 9 + CE
        return {"total": total, "pixel": pixel, "smooth": smooth, **terms}

    def _alignment(
        self,
        z_l: Tensor,
        h: Tensor | None,
        audio_neg: Tensor | None,
        audio_mask: Tensor | None,
        margin: float,
    ) -> Tensor:
        """Eq. 7 for the restored frames: max(‖v − a‖ − ‖v − a'‖ + margin, 0), v the cell mean
        of z_l, a = h(M_i), a' = h(M'_i), all L2-normalised; mean over items with speech."""
        if h is None or self.audio_proj is None:
            return z_l.new_zeros(())
        b, t = z_l.shape[:2]
        a = h[:, self.delta : self.delta + t]
        valid = torch.ones(b, dtype=torch.bool, device=z_l.device)
        if audio_mask is not None:
            valid = audio_mask.bool().to(z_l.device)
        if audio_neg is not None:
            neg = self.audio_proj(self.frame_audio(audio_neg).flatten(0, 1)).unflatten(0, (b, -1))
            neg = neg[:, self.delta : self.delta + t]
        elif b > 1:
            neg, valid = a.roll(1, 0), valid & valid.roll(1, 0)  # other items of the batch
        else:
            return z_l.new_zeros(())
        v = F.normalize(z_l.mean((-2, -1)), dim=-1)
        a, neg = F.normalize(a, dim=-1), F.normalize(neg, dim=-1)
        hinge = F.relu((v - a).norm(dim=-1) - (v - neg).norm(dim=-1) + margin)  # (B, T)
        w = valid.to(hinge.dtype)[:, None].expand_as(hinge)
        return (hinge * w).sum() / w.sum().clamp_min(1)

    def _check(self, frames: Tensor, audio: Tensor | None, flows: Tensor | None) -> None:
        """Raise unless the inputs have the shapes of the contract."""
        if frames.ndim != 5 or frames.shape[1:3] != (self.frames_in, 3):
            raise ValueError(
                f"frames must be (B, {self.frames_in}, 3, H, W); got {tuple(frames.shape)}"
            )
        b, _, _, h, w = frames.shape
        if min(h, w) < 16:
            raise InputError(f"the VQ restorer needs frames of at least 16x16 pixels; got {w}x{h}")
        shape = (b, self.frames_out, self.audio_window, self.n_mfcc)
        if audio is not None and tuple(audio.shape) != shape:
            raise ValueError(f"audio must be {shape}; got {tuple(audio.shape)}")
        if flows is not None and tuple(flows.shape) != (b, self.frames_out, 2, 2, h, w):
            raise ValueError(
                f"flows must be {(b, self.frames_out, 2, 2, h, w)}; got {tuple(flows.shape)}"
            )

    def dummy_inputs(self, height: int, width: int) -> dict[str, Tensor]:
        """Random forward arguments for one window of ``height`` x ``width`` frames (batch 1),
        with zero flows (``farneback_flows`` runs only when none are given)."""
        inputs = {
            "frames": torch.rand(1, self.frames_in, 3, height, width),
            "flows": torch.zeros(1, self.frames_out, 2, 2, height, width),
        }
        if self.use_audio:
            inputs["audio"] = torch.randn(1, self.frames_out, self.audio_window, self.n_mfcc)
        return inputs
