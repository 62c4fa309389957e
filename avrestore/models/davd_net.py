"""DAVD-Net: Deep Audio-aided Video Decompression of talking heads (Zhang, Wu, Zhai, Ben and Tu,
CVPR 2020), a peer of GAVN (``design/peers.md`` §2).

From 2n+1 = 5 decoded frames Y_{t±2} and the MFCC window A_{t±10} around frame t, DAVD-Net
restores X̂_t (eq. 2) in five modules, all at the frame's resolution (C is the feature width):

- video branch (§3.3): each frame's features, aligned onto Y_t by deformable convolution
  (our EDVR ``PCDAlignment``) and fused; then the ``VSubnet``, "a cascade of 5 residual
  blocks", gives F^v_t;
- ``ASubnet`` (§3.2, Fig. 3): a three-layer bidirectional LSTM reads the MFCC window,
  L_{t±m} = LSTM(A_{t±m}); "one linear layer and five upsampling residual blocks" turn it into
  F^a_t, "2-D feature maps of the same size as the video frame";
- ``SpatialAttentionFusion`` (§3.4): M_t = σ(Linear([F^v_t, F^a_t])) (eq. 3), then
  F_agg = Conv([F^v_t, M_t ⊙ F^a_t]) (eq. 4);
- ``Reconstruction``: "a cascade of 10 residual blocks" on F_agg gives Ỹ_t;
- CPM (§3.5, eqs. 5-8; ``avrestore.models.cpm``): Ỹ_t's transform coefficients are clamped
  into the quantisation cell of the decoded frame: X̂_t. No parameters; in the training forward
  pass ("end-to-end training of all modules ... except the CPM, which has no parameters").

Readings where the paper leaves a choice (``peers.md`` §2.8; each explained where it is made):
- Video branch before alignment: EDVR-M's front at full resolution (conv 3 -> C, LReLU,
  ``front_blocks`` residual blocks) and EDVR's 3-level feature pyramid; the paper only says
  deformable alignment "inspired by" TDAN and EDVR, and that its baseline is "comparable to
  EDVR because they have similar structure and complexity".
- Fusion of the aligned frames: one 1x1 conv 5C -> C with LReLU; EDVR's TSA with ``with_tsa``.
- The V-subnet sits after alignment and fusion ("After alignment, a network block called
  V-subnet is designated to extract features from the aligned video frames").
- Audio window: 21 MFCC steps of 10 ms (13 coefficients) centred on the frame, the project's
  ``audio_windows``, the same input GAVN gets; batch norm standardises each coefficient before
  the LSTM (c0, the log energy, dwarfs the rest), as GAVN's audio encoder.
- The linear layer reads the whole LSTM sequence L_{t±m} flattened (21 x 2 x hidden values),
  the literal reading; it dominates the parameter count (``parameter_groups``).
- Upsampling residual block (Fig. 3 is not in the text): a 4x4 stride-2 deconvolution
  ("implemented by deconvolution"), LReLU and a 3x3 conv, plus a nearest-x2 1x1-conv skip.
- F^a_t stands for the whole face crop: its seed is crop/32 (7 for 224, 4 for 128), so that
  five doublings reach the crop size. On a training patch, or a frame of another size, it is
  sampled where the frames lie in the face (``crop``), so that the same map means the same on a
  patch and on the whole face (``face_map.sample_face_region``, as GAVN).
- Eq. 3's "Linear" is per pixel, a 1x1 conv to ONE channel (a spatial map, as "attention map
  ... 0 represents that the audio feature at this position is completely useless"); eq. 4's
  "a few convolutional layers" are two 3x3 convs with an LReLU between.
- Reconstruction ends in a 3x3 conv to RGB added to Y_t (a global residual, as EDVR's; the
  paper does not say). That conv starts at zero, so a fresh model returns Y_t exactly.
- The paper's ablation rows: ``use_audio=False`` is the video-only baseline (VPB: F_agg = F^v);
  ``use_saf=False`` fuses by concatenation and one conv (VPB + APB); ``use_cpm``.
- CPM: luma on H.264's orthonormal 4x4 grid with Q = Qstep(max(macroblock QP, picture QP)),
  κ = ½ (``models.cpm``, ``media.qp``). It runs when the caller gives the centre frame's QP map
  (``qp``): the training and evaluation data of ``car``, where the 224² crop itself was coded
  by x264. It cannot run for deblur or SR (no bitstream), nor on a face cut from a real video
  and resized (its grid is not the stream's macroblock grid): without ``qp`` there is no
  projection.

Not in the paper, for CPU training (``scale=2``, ``davd-net-small``): the video path at half
resolution, by pixel-unshuffle x2 of the frames (3·4 channels) and pixel-shuffle x2 of the
residual; the A-subnet then has four upsampling blocks (to half the crop size). It keeps DAVD's
"fuse at the frame's own scale" character at a quarter of the cost (``peers.md`` §2.4).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from avrestore.audio.features import MFCC_WINDOW, N_MFCC
from avrestore.errors import InputError
from avrestore.media.colour import DEFAULT_SPEC
from avrestore.models.blocks import conv3x3, lrelu, residual_blocks
from avrestore.models.complexity import count_parameters
from avrestore.models.contract import AudioInput, RestorerContract
from avrestore.models.cpm import BLOCK, project, step_or_unbounded
from avrestore.models.edvr import TSAFusion
from avrestore.models.face_map import sample_face_region
from avrestore.models.pcd import FeaturePyramid, PCDAlignment

N_FRAMES = 5  # 2n + 1 with n = 2 (§4.2: "The window size for video signal is 5")
PYRAMID_STRIDE = 4  # the feature pyramid's coarsest level L3 is at 1/4 of the features


class UpsamplingResBlock(nn.Module):
    """Fig. 3 (right), our reading: x -> conv(LReLU(deconv(x))) + conv1x1(nearest x2(x)), (C, h,
    w) -> (C, 2h, 2w). The paper: "The upsample module in the A-subnet is implemented by
    deconvolution"; the figure itself is missing from the text."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.deconv = nn.ConvTranspose2d(channels, channels, 4, stride=2, padding=1)
        self.conv = conv3x3(channels, channels)
        self.skip = nn.Conv2d(channels, channels, 1)

    def forward(self, x: Tensor) -> Tensor:
        """Double the size."""
        up = self.skip(F.interpolate(x, scale_factor=2, mode="nearest"))
        return up + self.conv(lrelu(self.deconv(x)))


class ASubnet(nn.Module):
    """§3.2: the MFCC window A_{t±m} (B, 2m+1, n_mfcc) -> F^a_t, a (C, s·2^k, s·2^k) map of the
    whole face crop (s: the seed's side, k: the upsampling blocks).

    BatchNorm1d standardises each coefficient (our reading, as GAVN's audio encoder); the BiLSTM
    gives L_{t±m} (B, 2m+1, 2·hidden); the linear layer reads it flattened and makes a C x s x s
    seed; ``k`` upsampling residual blocks double it each.
    """

    def __init__(
        self,
        window: int,
        n_mfcc: int,
        channels: int,
        hidden: int,
        seed: int,
        up_blocks: int,
        lstm_layers: int = 3,
    ) -> None:
        super().__init__()
        self.channels, self.seed = channels, seed
        self.norm = nn.BatchNorm1d(n_mfcc)
        # "a three-layers bidirectional LSTM module": L_{t±m} = LSTM(A_{t±m}).
        self.lstm = nn.LSTM(n_mfcc, hidden, lstm_layers, batch_first=True, bidirectional=True)
        # "one linear layer": the whole sequence L_{t±m}, flattened (the literal reading).
        self.linear = nn.Linear(window * 2 * hidden, channels * seed * seed)
        # "five upsampling residual blocks" at paper scale.
        self.up = nn.Sequential(*(UpsamplingResBlock(channels) for _ in range(up_blocks)))

    def forward(self, A: Tensor) -> Tensor:
        """F^a_t of the whole face, (B, C, s·2^k, s·2^k)."""
        x = self.norm(A.transpose(1, 2)).transpose(1, 2)
        L, _ = self.lstm(x)  # (B, 2m+1, 2·hidden)
        seed = lrelu(self.linear(L.flatten(1)))  # LReLU after it: our reading, as GAVN's
        return self.up(seed.view(-1, self.channels, self.seed, self.seed))


class VideoBranch(nn.Module):
    """§3.3 up to the V-subnet: frames (B, 5, c_in, H, W) -> the aligned, fused feature
    (B, C, H, W) of frame t; H and W multiples of 4.

    Each frame: conv c_in -> C, LReLU, ``front_blocks`` residual blocks (EDVR-M's front), the
    3-level pyramid; PCD aligns every frame, Y_t included, onto Y_t (as EDVR's code); a 1x1
    conv and LReLU (or TSA) fuses the five.
    """

    def __init__(
        self, in_channels: int, channels: int, deform_groups: int, front_blocks: int, with_tsa: bool
    ) -> None:
        super().__init__()
        c = channels
        self.conv_first = conv3x3(in_channels, c)
        self.front = residual_blocks(c, front_blocks)
        self.pyramid = FeaturePyramid(c)
        self.alignment = PCDAlignment(c, deform_groups)
        self.with_tsa = with_tsa
        self.fusion = TSAFusion(c, N_FRAMES) if with_tsa else nn.Conv2d(N_FRAMES * c, c, 1)

    def forward(self, frames: Tensor) -> Tensor:
        """Align the frames onto the centre one and fuse them."""
        b, t = frames.shape[:2]
        levels = self.pyramid(self.front(lrelu(self.conv_first(frames.flatten(0, 1)))))
        ref = [lvl.unflatten(0, (b, t))[:, t // 2].repeat_interleave(t, 0) for lvl in levels]
        aligned = self.alignment(levels, ref).unflatten(0, (b, t))
        if self.with_tsa:
            return self.fusion(aligned)
        return lrelu(self.fusion(aligned.flatten(1, 2)))


class SpatialAttentionFusion(nn.Module):
    """§3.4: F^v_t, F^a_t (B, C, h, w) -> F_agg (B, C, h, w).

    With ``attention=False`` the paper's ablation row "APB" without SAF: the two are
    concatenated and fused "with a simple convolutional layer".
    """

    def __init__(self, channels: int, attention: bool = True) -> None:
        super().__init__()
        c = channels
        # Eq. 3's "Linear" applies per pixel: a 1x1 conv to one channel, a spatial map.
        self.attention = nn.Conv2d(2 * c, 1, 1) if attention else None
        # Eq. 4's "a few convolutional layers": two 3x3 convs (one without SAF).
        self.aggregate = (
            nn.Sequential(conv3x3(2 * c, c), nn.LeakyReLU(0.1), conv3x3(c, c))
            if attention
            else conv3x3(2 * c, c)
        )

    def forward(self, F_v: Tensor, F_a: Tensor) -> Tensor:
        """Fuse the video and audio features."""
        if self.attention is not None:
            M_t = torch.sigmoid(self.attention(torch.cat((F_v, F_a), 1)))  # eq. (3)
            F_a = M_t * F_a
        return self.aggregate(torch.cat((F_v, F_a), 1))  # eq. (4)


class Reconstruction(nn.Module):
    """§3.4's "reconstruction module consisting of 10 residual blocks": F_agg -> the residual of
    Ỹ_t on Y_t, (B, 3, H, W); a conv to 3·scale² channels and a pixel shuffle (scale 1 at paper
    scale) bring it to the frame's size."""

    def __init__(self, channels: int, n_blocks: int, scale: int) -> None:
        super().__init__()
        self.scale = scale
        self.body = residual_blocks(channels, n_blocks)
        # Zero: a fresh DAVD-Net returns Y_t exactly, and training starts from the identity
        # rather than from Y_t plus a random residual (the global residual is our reading).
        self.conv_last = conv3x3(channels, 3 * scale * scale)
        nn.init.zeros_(self.conv_last.weight)
        nn.init.zeros_(self.conv_last.bias)

    def forward(self, F_agg: Tensor) -> Tensor:
        """The RGB residual."""
        return F.pixel_shuffle(self.conv_last(self.body(F_agg)), self.scale)


class DAVDNet(nn.Module):
    """DAVD-Net: 5 decoded frames (B, 5, 3, H, W) in [0, 1], the MFCC window of the centre one
    (B, 1, 21, 13) and, for the CPM, its QP map -> the restored centre frame (B, 1, 3, H, W).

    Frames of any size from ``4·scale`` pixels up are reflect-padded (right, bottom) to a
    multiple of 4·scale (the pyramid's L3 is at 1/4 of the features) and the output cropped
    back; the CPM needs H and W multiples of 4.
    """

    def __init__(
        self,
        channels: int = 64,
        deform_groups: int = 8,
        front_blocks: int = 5,
        v_blocks: int = 5,
        reconstruction_blocks: int = 10,
        scale: int = 1,
        with_tsa: bool = False,
        audio_window: int = MFCC_WINDOW,
        n_mfcc: int = N_MFCC,
        audio_hidden: int = 128,
        audio_up_blocks: int = 5,
        use_audio: bool = True,
        use_saf: bool = True,
        use_cpm: bool = True,
        cpm_kappa: float = 0.5,
        crop_size: int = 224,
    ) -> None:
        super().__init__()
        if scale not in (1, 2):
            raise InputError(f"DAVD-Net's video path runs at scale 1 or 2; got {scale}")
        seed, rest = divmod(crop_size, scale * 2**audio_up_blocks)
        if rest or seed < 1:
            raise InputError(
                f"a {crop_size}-pixel crop is not {2**audio_up_blocks} x {scale} x a whole "
                "seed: the audio map of the face could not match the features"
            )
        c = channels
        self.scale, self.size_multiple = scale, PYRAMID_STRIDE * scale
        # Not architecture: the face crop side it is trained on, which ``restore`` cuts faces
        # at; the audio map F^a_t stands for a crop of that side.
        self.crop_size = crop_size
        self.audio_window, self.n_mfcc = audio_window, n_mfcc
        self.use_audio, self.use_cpm, self.cpm_kappa = use_audio, use_cpm, cpm_kappa
        self.colour = DEFAULT_SPEC  # the CPM's Y' (``media.colour``: our writer's BT.601)
        self.video = VideoBranch(3 * scale * scale, c, deform_groups, front_blocks, with_tsa)
        self.v_subnet = residual_blocks(c, v_blocks)  # §3.3: "a cascade of 5 residual blocks"
        self.a_subnet = (
            ASubnet(audio_window, n_mfcc, c, audio_hidden, seed, audio_up_blocks)
            if use_audio
            else None
        )
        self.saf = SpatialAttentionFusion(c, use_saf) if use_audio else None
        self.reconstruction = Reconstruction(c, reconstruction_blocks, scale)
        self.cpm_off = False  # an evaluation switch (``ablate``)

    @property
    def contract(self) -> RestorerContract:
        """5 crops in, the centre one out; its MFCC window with the audio branch; its QP map
        (side data ``qp``) with the CPM. Evaluation may switch off the audio (by not passing
        it) and the CPM."""
        ablations = (("audio",) if self.use_audio else ()) + (("cpm",) if self.use_cpm else ())
        return RestorerContract(
            frames_in=N_FRAMES,
            frames_out=1,
            crop_size=self.crop_size,
            audio=AudioInput(self.audio_window, self.n_mfcc) if self.use_audio else None,
            side_data=("qp",) if self.use_cpm else (),
            ablations=ablations,
        )

    @contextlib.contextmanager
    def ablate(self, parts: frozenset[str]) -> Iterator[None]:
        """Run with ``parts`` switched off inside the model: ``cpm`` (no projection even with a
        QP map). The audio is switched off by not passing it."""
        unknown = set(parts) - {"cpm"}
        if unknown:
            raise ValueError(f"DAVD-Net cannot switch off {sorted(unknown)} inside itself")
        self.cpm_off = "cpm" in parts
        try:
            yield
        finally:
            self.cpm_off = False

    def parameter_groups(self) -> dict[str, int]:
        """Parameters of the audio branch (A-subnet, and of it the linear layer), of SAF and of
        the video path (all the rest): the flattening linear layer dominates any total."""
        audio = 0 if self.a_subnet is None else count_parameters(self.a_subnet)
        linear = 0 if self.a_subnet is None else count_parameters(self.a_subnet.linear)
        fusion = 0 if self.saf is None else count_parameters(self.saf)
        video = count_parameters(self) - audio - fusion
        return {"audio": audio, "audio_linear": linear, "fusion": fusion, "video": video}

    def forward(
        self,
        frames: Tensor,
        audio: Tensor | None = None,
        audio_mask: Tensor | None = None,
        crop: Tensor | None = None,
        qp: Tensor | None = None,
        decoded: Tensor | None = None,
    ) -> Tensor:
        """Restore the centre frame X̂_t.

        ``audio`` (B, 1, 21, 13): the MFCC window A_{t±10}; without it (or where ``audio_mask``
        (B,) is 0) F^a_t is zero. ``crop`` (B, 4): where the frames lie in their whole face crop
        (``top, left, face_h, face_w`` in pixels; a training patch), default the whole face.
        ``qp`` (B, 1, H/4, W/4) per 4x4 block or (B, 1, H/16, W/16) per macroblock: the QP
        bounding the centre frame's coefficients (``media.qp.effective_qp``); with it the CPM
        runs, except on blocks whose QP is negative (-1: an item not coded on this grid).
        ``decoded`` (B, 1, H, W): the centre frame's decoded Y' plane in 8-bit units, default
        the Y' of the centre input frame.
        """
        self._check(frames, audio, qp, decoded)
        b, t, _, h, w = frames.shape
        Y_t = frames[:, t // 2]
        ph, pw = -h % self.size_multiple, -w % self.size_multiple
        x = F.pad(frames.flatten(0, 1), (0, pw, 0, ph), mode="reflect")
        if self.scale > 1:
            x = F.pixel_unshuffle(x, self.scale)
        F_v = self.v_subnet(self.video(x.unflatten(0, (b, t))))  # §3.3
        F_agg = F_v
        if self.a_subnet is not None and self.saf is not None:
            if audio is None:
                F_a = torch.zeros_like(F_v)
            else:
                if crop is None:
                    crop = frames.new_tensor([0.0, 0.0, h, w]).expand(b, 4)
                face_map = self.a_subnet(audio[:, 0])  # §3.2
                size = (h + ph, w + pw)
                F_a = sample_face_region(face_map, crop, size, self.scale).to(F_v.dtype)
                if audio_mask is not None:
                    F_a = F_a * audio_mask.to(F_a.dtype)[:, None, None, None]
            F_agg = self.saf(F_v, F_a)  # §3.4, eqs. (3)-(4)
        Y_tilde = Y_t + self.reconstruction(F_agg)[..., :h, :w]  # global residual
        if self.use_cpm and qp is not None and not self.cpm_off:  # §3.5, eqs. (5)-(8)
            Y_tilde = project(
                Y_tilde.float(),
                Y_t.float(),
                step_or_unbounded(qp[:, 0]),
                self.cpm_kappa,
                self.colour,
                None if decoded is None else decoded[:, 0].float(),
            )
        return Y_tilde[:, None]

    def _check(
        self, frames: Tensor, audio: Tensor | None, qp: Tensor | None, decoded: Tensor | None
    ) -> None:
        """Raise unless the inputs have the shapes of the contract."""
        if frames.ndim != 5 or frames.shape[1:3] != (N_FRAMES, 3):
            raise ValueError(f"frames must be (B, {N_FRAMES}, 3, H, W); got {tuple(frames.shape)}")
        b, _, _, h, w = frames.shape
        if min(h, w) < self.size_multiple:
            raise InputError(
                f"DAVD-Net needs frames of at least {self.size_multiple} pixels; got {w}x{h}"
            )
        if audio is not None and tuple(audio.shape) != (b, 1, self.audio_window, self.n_mfcc):
            want = (b, 1, self.audio_window, self.n_mfcc)
            raise ValueError(f"audio must be {want}; got {tuple(audio.shape)}")
        if qp is not None and self.use_cpm:
            if h % BLOCK or w % BLOCK:
                raise InputError(f"the CPM needs frames of whole 4x4 blocks; got {w}x{h}")
            if qp.ndim != 4 or qp.shape[:2] != (b, 1):
                raise ValueError(f"qp must be (B, 1, h, w) per block; got {tuple(qp.shape)}")
        if decoded is not None and tuple(decoded.shape) != (b, 1, h, w):
            raise ValueError(f"decoded must be {(b, 1, h, w)}; got {tuple(decoded.shape)}")

    def dummy_inputs(self, height: int, width: int) -> dict[str, Tensor]:
        """Random forward arguments for one window of ``height`` x ``width`` frames (batch 1);
        a QP map (CRF-45-like QPs) when the CPM is on and the frames are whole 4x4 blocks."""
        inputs = {"frames": torch.rand(1, N_FRAMES, 3, height, width)}
        if self.use_audio:
            inputs["audio"] = torch.randn(1, 1, self.audio_window, self.n_mfcc)
        if self.use_cpm and height % BLOCK == 0 and width % BLOCK == 0:
            inputs["qp"] = torch.randint(35, 52, (1, 1, height // BLOCK, width // BLOCK))
        return inputs
