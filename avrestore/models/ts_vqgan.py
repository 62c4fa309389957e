"""TS-VQGAN: the temporal-spatial VQ autoencoder of PGTFormer (Xu et al., "Beyond Alignment:
Blind Video Face Restoration via Parsing-Guided Temporal-Coherent Transformer", 2024), sized
for 224² faces, as the audio-guided VQ restorer (Sun, JCEIM 2025) uses it: frozen, its decoder
draws faces from predicted code indices.

A clip of T frames (T = 3 in training) in [0, 1]:

- ``Encoder``, per frame: conv3x3 to ``ch``, then one level per entry of ``ch_mult`` with
  ``enc_blocks`` ``ResBlock`` (GroupNorm, SiLU, conv3x3, taming's) each and a stride-2 conv
  between levels (224 → 112 → 56 → 28 → 14 with five levels, → 28 with four); the middle is
  ResBlock, ``TemporalSelfAttention`` over the T x h x w latent positions of the clip, ResBlock;
  GroupNorm, SiLU and conv3x3 to the code dimension d;
- ``VectorQuantizer``: K codes of d dimensions, EMA updates, dead-code restart, k-means
  initialisation after an autoencoder warm-up (``vector_quantizer``);
- ``Decoder``, the mirror: conv3x3 from d, the middle (ResBlock, attention, ResBlock), one
  level per ``ch_mult`` entry from the coarsest with ``dec_blocks`` ResBlocks and nearest
  x2 + conv3x3 between, GroupNorm, SiLU, conv3x3 to RGB. ``decode`` returns the features of
  every level (at 1/f .. 1/1 of the frame) and takes a hook that may change them, where the
  restorer's fidelity modulation (its eq. 5) acts.

Readings (PGTFormer's option file is at 512² with 3-D *window* attention, 4x4x3 windows, at three
resolutions and in the middle, ch_mult [1,2,4,4,8], 1024 x 512-D codes):

- Attention is full over the clip's T·h·w latent tokens (588 at 14 x 14 x 3, 2,352 at
  28 x 28 x 3), single-head, no positional embedding (CodeFormer's ``AttnBlock`` over time as
  well as space), in the middle of encoder and decoder only, and without a positional
  embedding a model trained on 128² crops runs on 224².
- Widths and depths: the paper-scale ``ts-vqgan`` ch 64, ch_mult (1,2,2,4,4), d 256, K 1024:
  14 x 14 codes at 224, as design/peers.md §3 sizes it. ``ts-vqgan-small`` ch 32, d 64, K 512
  and one level fewer, ch_mult (1,2,2,4): **28 x 28 codes** (f = 8). Measured, same recipe and
  data, trained on one GPU (tools/device_vqgan.py): f = 16 reconstructs the test speakers'
  clean crops at 23.69 dB after 5,695 steps, f = 8 at 26.80 dB after 3,218 (the CRF-45 input
  is at 26.71): 512 codes of 16 x 16 pixels cannot draw a face as well as its input, and the
  decoder's output is this restorer's ceiling (weights/ts-vqgan-small.md).
- Frames are mapped to [-1, 1] inside (taming's range) and back; the output is not clamped.
- Training (``losses``): L1 + 0.2·(1 − MS-SSIM) + β‖z_e − sg[e]‖², β = 0.25. PGTFormer adds
  LPIPS and a hinge GAN; no LPIPS/VGG weights are available offline and a GAN is out of reach
  of the CPU budget, so neither is here (a documented deviation).

As a registered model its contract is that of a 3-frame "restorer" that reconstructs its input
clip (``forward``): ``avrestore models`` can size it, and evaluating it on HQ frames gives the
reconstruction ceiling of the VQ restorer. It is not a restorer of degraded input.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
from pytorch_msssim import ms_ssim
from torch import Tensor, nn

from avrestore.models.contract import RestorerContract
from avrestore.models.losses import ssim_fp32
from avrestore.models.vector_quantizer import VectorQuantizer

CLIP_FRAMES = 3  # frames per clip: the temporal attention's window

# A decoder hook: (downsampling factor of the level, its features (B*T, C, h, w)) -> features.
DecoderHook = Callable[[int, Tensor], Tensor]


def group_norm(channels: int) -> nn.GroupNorm:
    """taming's normalisation: 32 groups (fewer when the width is not a multiple of 32)."""
    return nn.GroupNorm(math.gcd(32, channels), channels, eps=1e-6)


class ResBlock(nn.Module):
    """taming's ResnetBlock without time embedding or dropout: x + conv(SiLU(GN(conv(SiLU(GN(x))))))
    with a 1x1 shortcut when the width changes."""

    def __init__(self, c_in: int, c_out: int) -> None:
        super().__init__()
        self.norm1 = group_norm(c_in)
        self.conv1 = nn.Conv2d(c_in, c_out, 3, 1, 1)
        self.norm2 = group_norm(c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, 1, 1)
        self.shortcut = nn.Conv2d(c_in, c_out, 1) if c_in != c_out else nn.Identity()

    def forward(self, x: Tensor) -> Tensor:
        """The block's residual added to the (projected) input."""
        h = self.conv1(F.silu(self.norm1(x)))
        return self.shortcut(x) + self.conv2(F.silu(self.norm2(h)))


class TemporalSelfAttention(nn.Module):
    """Single-head self-attention over all T x h x w positions of a clip (CodeFormer's
    AttnBlock extended over time): (B*T, C, h, w) -> the same, residual."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.norm = group_norm(channels)
        self.q = nn.Conv2d(channels, channels, 1)
        self.k = nn.Conv2d(channels, channels, 1)
        self.v = nn.Conv2d(channels, channels, 1)
        self.proj_out = nn.Conv2d(channels, channels, 1)

    def forward(self, x: Tensor, frames: int) -> Tensor:
        """Attend across the ``frames`` consecutive items of the batch that form one clip."""
        bt, c, h, w = x.shape
        y = self.norm(x)

        def tokens(t: Tensor) -> Tensor:  # (B*T, C, h, w) -> (B, 1, T*h*w, C)
            return (
                t.reshape(bt // frames, frames, c, h * w)
                .permute(0, 1, 3, 2)
                .reshape(bt // frames, 1, frames * h * w, c)
            )

        out = F.scaled_dot_product_attention(
            tokens(self.q(y)), tokens(self.k(y)), tokens(self.v(y))
        )
        out = out.view(bt // frames, frames, h * w, c).permute(0, 1, 3, 2).reshape(bt, c, h, w)
        return x + self.proj_out(out)


class Middle(nn.Module):
    """ResBlock, temporal self-attention, ResBlock at the latent grid."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.block1 = ResBlock(channels, channels)
        self.attn = TemporalSelfAttention(channels)
        self.block2 = ResBlock(channels, channels)

    def forward(self, x: Tensor, frames: int) -> Tensor:
        """(B*T, C, h, w) -> the same."""
        return self.block2(self.attn(self.block1(x), frames))


class Encoder(nn.Module):
    """Frames (B*T, 3, H, W) in [-1, 1] -> z_e (B*T, d, H/2^(L-1), W/2^(L-1))."""

    def __init__(self, ch: int, ch_mult: Sequence[int], z_dim: int, n_blocks: int) -> None:
        super().__init__()
        widths = [ch * m for m in ch_mult]
        self.conv_in = nn.Conv2d(3, ch, 3, 1, 1)
        self.levels = nn.ModuleList()
        c = ch
        for i, width in enumerate(widths):
            blocks: list[nn.Module] = []
            for _ in range(n_blocks):
                blocks.append(ResBlock(c, width))
                c = width
            if i < len(widths) - 1:
                blocks.append(nn.Conv2d(c, c, 3, 2, 1))  # down-sampling to the next level
            self.levels.append(nn.Sequential(*blocks))
        self.middle = Middle(c)
        self.norm_out = group_norm(c)
        self.conv_out = nn.Conv2d(c, z_dim, 3, 1, 1)

    def forward(self, x: Tensor, frames: int) -> Tensor:
        """Encode the frames of clips of ``frames`` consecutive batch items."""
        h = self.conv_in(x)
        for level in self.levels:
            h = level(h)
        h = self.middle(h, frames)
        return self.conv_out(F.silu(self.norm_out(h)))


class Upsample(nn.Module):
    """Nearest x2, then conv3x3 (taming's Upsample)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, 1, 1)

    def forward(self, x: Tensor) -> Tensor:
        """(B, C, h, w) -> (B, C, 2h, 2w)."""
        return self.conv(F.interpolate(x, scale_factor=2.0, mode="nearest"))


class Decoder(nn.Module):
    """z_q (B*T, d, h, w) -> frames (B*T, 3, H, W) in [-1, 1] and each level's features."""

    def __init__(self, ch: int, ch_mult: Sequence[int], z_dim: int, n_blocks: int) -> None:
        super().__init__()
        widths = [ch * m for m in ch_mult][::-1]  # coarsest level first
        self.factors = [2 ** (len(widths) - 1 - i) for i in range(len(widths))]  # 16, 8, .., 1
        c = widths[0]
        self.conv_in = nn.Conv2d(z_dim, c, 3, 1, 1)
        self.middle = Middle(c)
        self.levels = nn.ModuleList()
        self.ups = nn.ModuleList()
        self.widths: list[int] = []
        for i, width in enumerate(widths):
            blocks: list[nn.Module] = []
            for _ in range(n_blocks):
                blocks.append(ResBlock(c, width))
                c = width
            self.levels.append(nn.Sequential(*blocks))
            self.widths.append(c)
            self.ups.append(Upsample(c) if i < len(widths) - 1 else nn.Identity())
        self.norm_out = group_norm(c)
        self.conv_out = nn.Conv2d(c, 3, 3, 1, 1)

    def forward(
        self, z: Tensor, frames: int, hook: DecoderHook | None = None
    ) -> tuple[Tensor, dict[int, Tensor]]:
        """Decode; after each level's blocks ``hook(factor, features)`` may replace them (the
        restorer's fidelity modulation). Returns the image and {factor: features}."""
        h = self.middle(self.conv_in(z), frames)
        feats: dict[int, Tensor] = {}
        for factor, level, up in zip(self.factors, self.levels, self.ups, strict=True):
            h = level(h)
            if hook is not None:
                h = hook(factor, h)
            feats[factor] = h
            h = up(h)
        return self.conv_out(F.silu(self.norm_out(h))), feats


class TSVQGAN(nn.Module):
    """TS-VQGAN: clips (B, T, 3, H, W) in [0, 1] -> codes (B, T, H/f, W/f) -> frames, with
    f = 2^(len(ch_mult) - 1); H and W must be multiples of f (``forward`` pads).

    ``quantize=False`` bypasses the codebook (the autoencoder warm-up stage).
    """

    def __init__(
        self,
        ch: int = 32,
        ch_mult: Sequence[int] = (1, 2, 2, 4, 4),
        z_dim: int = 64,
        n_codes: int = 512,
        enc_blocks: int = 1,
        dec_blocks: int = 2,
        beta: float = 0.25,
        decay: float = 0.99,
        restart_every: int = 200,
        kmeans_vectors: int = 50_000,
        ms_ssim_weight: float = 0.2,
        quantize: bool = True,
        crop_size: int = 224,
    ) -> None:
        super().__init__()
        self.z_dim, self.n_codes = z_dim, n_codes
        self.downsample = 2 ** (len(ch_mult) - 1)
        self.ms_ssim_weight = ms_ssim_weight
        self.quantize = quantize
        self.crop_size = crop_size
        self.encoder = Encoder(ch, ch_mult, z_dim, enc_blocks)
        self.quantizer = VectorQuantizer(
            n_codes,
            z_dim,
            beta=beta,
            decay=decay,
            restart_every=restart_every,
            kmeans_vectors=kmeans_vectors,
        )
        self.decoder = Decoder(ch, ch_mult, z_dim, dec_blocks)

    @property
    def contract(self) -> RestorerContract:
        """A 3-frame clip in, its reconstruction out (module docstring): no audio, nothing to
        switch off; it trains (``losses``) on sides that are multiples of its downsampling."""
        return RestorerContract(
            frames_in=CLIP_FRAMES,
            frames_out=CLIP_FRAMES,
            crop_size=self.crop_size,
            train_multiple=self.downsample,
        )

    def encode(self, frames: Tensor) -> Tensor:
        """z_e (B, T, d, h, w) of clips (B, T, 3, H, W) in [0, 1]."""
        b, t = frames.shape[:2]
        z = self.encoder(frames.flatten(0, 1) * 2 - 1, t)
        return z.unflatten(0, (b, t))

    @torch.no_grad()
    def codes(self, frames: Tensor) -> Tensor:
        """The nearest-code indices (B, T, h, w) of clips in [0, 1] (the targets of the code
        predictor); never changes the codebook."""
        z = self.encode(frames)
        return self.quantizer.codes(z.flatten(0, 1)).unflatten(0, z.shape[:2])

    def embed(self, codes: Tensor) -> Tensor:
        """Codes (B, T, h, w) -> z_q (B, T, d, h, w)."""
        return self.quantizer.embed(codes.flatten(0, 1)).unflatten(0, codes.shape[:2])

    def decode(
        self, z_q: Tensor, hook: DecoderHook | None = None
    ) -> tuple[Tensor, dict[int, Tensor]]:
        """z_q (B, T, d, h, w) -> frames (B, T, 3, H, W) and the decoder's features of each
        level {factor: (B*T, C, H/factor, W/factor)} (after ``hook``)."""
        b, t = z_q.shape[:2]
        x, feats = self.decoder(z_q.flatten(0, 1), t, hook)
        return ((x + 1) / 2).unflatten(0, (b, t)), feats

    def reconstruct(self, frames: Tensor) -> tuple[Tensor, Tensor, dict[str, Tensor]]:
        """Encode, quantise (unless ``quantize`` is off) and decode clips whose sides are
        multiples of the downsampling: (frames, commitment loss, codebook statistics)."""
        z = self.encode(frames)
        stats: dict[str, Tensor] = {}
        commitment = z.new_zeros(())
        if self.quantize:
            q = self.quantizer(z.flatten(0, 1))
            z = q.z_q.unflatten(0, z.shape[:2])
            commitment = q.commitment
            stats = {"perplexity": q.perplexity, "usage": q.usage}
        return self.decode(z)[0], commitment, stats

    def forward(self, frames: Tensor) -> Tensor:
        """Reconstruct clips (B, T, 3, H, W) of any size >= 16: reflect-padded (right, bottom)
        to a multiple of the downsampling and cropped back."""
        h, w = frames.shape[-2:]
        f = self.downsample
        x = F.pad(frames.flatten(0, 1), (0, -w % f, 0, -h % f), mode="reflect")
        return self.reconstruct(x.unflatten(0, frames.shape[:2]))[0][..., :h, :w]

    def losses(self, frames: Tensor) -> dict[str, Tensor]:
        """The pretraining objective on clean clips (B, T, 3, H, W), sides multiples of the
        downsampling: ``total`` = L1 + w·(1 − MS-SSIM) + commitment, and its terms (detached
        codebook statistics ``perplexity`` and ``usage`` when quantising)."""
        recon, commitment, stats = self.reconstruct(frames)
        l1 = F.l1_loss(recon, frames)
        structure = 1 - ms_ssim_loss_term(recon.flatten(0, 1), frames.flatten(0, 1))
        total = l1 + self.ms_ssim_weight * structure + commitment
        terms = {"total": total, "l1": l1, "ms_ssim": structure, "commitment": commitment}
        return terms | {k: v.detach() for k, v in stats.items()}

    def dummy_inputs(self, height: int, width: int) -> dict[str, Tensor]:
        """Random forward arguments: one clip of ``height`` x ``width`` frames."""
        return {"frames": torch.rand(1, CLIP_FRAMES, 3, height, width)}


def ms_ssim_loss_term(x: Tensor, y: Tensor) -> Tensor:
    """MS-SSIM (pytorch_msssim: 5 scales, published weights, data range 1, float32) of images
    (N, 3, H, W). pytorch_msssim needs the short side above 16 (window − 1): the Gaussian
    window is 11 taps from 161 px and shrinks (odd) below (7 taps at 128 px); under 49 px, where
    not even 3 taps fit, single-scale SSIM with an 11-tap window stands in. Outside autocast:
    under bf16 its Gaussian convolutions would round the local means to 3 digits, and the
    term (1 - MS-SSIM is a few hundredths) would be mostly rounding."""
    side = min(x.shape[-2:])
    win = min(11, (side - 1) // 16 + 1)
    win -= 1 - win % 2  # odd
    with torch.autocast(x.device.type, enabled=False):
        if win < 3:
            return ssim_fp32(x, y)
        return ms_ssim(x.float(), y.float(), data_range=1.0, win_size=win)
