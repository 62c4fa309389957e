"""GAVN: General Audio-assisted face Video restoration Network (Cao et al., "Audio-Assisted Face
Video Restoration with Temporal and Identity Complementary Learning").

From 2N+5 degraded frames (and, per restored frame, its MFCC window and 68 landmarks) GAVN
restores the 2N+1 centre frames in three stages; C is the feature width:

- ``InterFrameTemporal`` (eqs. 4-10), at 1/4 of the input size to save computation: a
  pre-deblur module as EDVR's for HR input (two stride-2 convs to 1/4, residual blocks there)
  gives each frame F_j a 3-level pyramid (L1 1/4, L2 1/8, L3 1/16, stride-2 convs as EDVR's);
  PCD alignment (EDVR) drives four recurrent streams (forward/backward adjacent FA/BA from
  j∓1, forward/backward skip-frame FS/BS from j∓2) and the self-alignment AF_j; attention
  fusion makes T_j (1/4).
- ``IntraFrameIdentity`` (eqs. 11-16), per centre frame, from the full-resolution inputs (no
  pre-deblur): the frame, its landmark heatmaps and its audio each give features at two levels,
  F¹ at 1/2 and F² at 1/4; landmark and audio features are gated by the frame's; I¹ and I².
- ``Reconstruction`` (eqs. 17-18, 3): I² modulates T at 1/4 and Φ_up lifts it to 1/2 (Î²), I¹
  modulates Î² and Φ_up lifts it to full size (Î¹); a conv to RGB is added to the input frame.

Readings where the paper leaves a choice (each explained where it is made):
- One PCD ``Align`` serves all five alignments (eqs. 4-8 use one function; EDVR likewise
  aligns neighbours at any distance with one PCD). Each stream has its own fusion of the
  aligned state with F_j (BasicVSR's propagation); a stream's state is lifted to a pyramid by
  the same pyramid convs as the frames, since PCD aligns pyramids. A stream's first frames
  have no source; their aligned state is zero (BasicVSR's initial state).
- Eq. 9: the stream weight is σ(Σ_c θ(Y) ⊙ φ(AF)), one value per pixel, as EDVR's TSA.
- Landmarks: 68 Gaussian heatmaps (σ = 2 px at full size), one channel per point.
- Audio (DAVD-Net's A-subnet): the MFCC window, each coefficient standardised by batch norm,
  → BiLSTM → linear → a C x 7 x 7 seed → three Φ_up → a 56 x 56 map of the whole face crop,
  sampled where the frames lie in the face (``AudioEncoder``), so that it means the same on
  a training patch and on a whole face.
- Initialisation (not in the paper; ``Modulation``, ``Reconstruction``): the residual head is
  zero and the modulations are the identity, so a fresh GAVN returns its input exactly and the
  warm-up stage starts exactly at the stage-1 model.
- Eq. 16's convolution of a concatenation is written as the sum of one convolution per branch
  (the same function); landmark and audio slices have no bias. A missing input (``audio=None``
  or ``landmarks=None`` on a model that has the branch) then drops its term, exactly as a zero
  gated feature would: the model runs as if that branch were absent.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from avrestore.audio.features import MFCC_WINDOW, N_MFCC
from avrestore.errors import InputError
from avrestore.models.blocks import UpsampleBlock, conv3x3, lrelu, residual_blocks
from avrestore.models.contract import N_LANDMARKS, AudioInput, RestorerContract
from avrestore.models.face_map import sample_face_region
from avrestore.models.heatmaps import landmark_heatmaps
from avrestore.models.pcd import FeaturePyramid, PCDAlignment

SIZE_MULTIPLE = 16  # L3 is at 1/16: frames are padded to a multiple of it

# Stream -> how far back its source frame lies: FS_j from j-2 (eq. 6), FA_j from j-1 (eq. 4),
# BA_j from j+1 (eq. 5), BS_j from j+2 (eq. 7).
STREAM_SOURCES = {"FS": 2, "FA": 1, "BA": -1, "BS": -2}


class PreDeblur(nn.Module):
    """Frame (3, H, W) -> L1 feature (C, H/4, W/4): EDVR's HR-input pre-deblur, simplified.

    Two stride-2 convs reach 1/4 and residual blocks deblur there; EDVR's own inner 1/8 and
    1/16 levels are left out, since the feature pyramid that follows provides those scales.
    """

    def __init__(self, channels: int, n_blocks: int) -> None:
        super().__init__()
        self.down1 = conv3x3(3, channels, stride=2)
        self.down2 = conv3x3(channels, channels, stride=2)
        self.body = residual_blocks(channels, n_blocks)

    def forward(self, x: Tensor) -> Tensor:
        """Downsample by 4 and deblur."""
        return self.body(lrelu(self.down2(lrelu(self.down1(x)))))


class InterFrameTemporal(nn.Module):
    """Eqs. 4-10: frames (B, 2N+5, 3, H, W), H and W multiples of 16 -> T (B, 2N+1, C, H/4, W/4)
    for the centre frames."""

    def __init__(
        self, channels: int, deform_groups: int, deblur_blocks: int, prop_blocks: int
    ) -> None:
        super().__init__()
        c = channels
        self.predeblur = PreDeblur(c, deblur_blocks)
        self.pyramid = FeaturePyramid(c)
        self.align = PCDAlignment(c, deform_groups)
        # Per stream, BasicVSR's propagation: fuse the aligned state with the frame's feature.
        self.propagate = nn.ModuleDict(
            {
                name: nn.Sequential(
                    conv3x3(2 * c, c), nn.LeakyReLU(0.1), residual_blocks(c, prop_blocks)
                )
                for name in STREAM_SOURCES
            }
        )
        self.embed_stream = conv3x3(c, c)  # θ of eq. 9, shared by the four streams
        self.embed_ref = conv3x3(c, c)  # φ of eq. 9
        self.fuse = nn.Conv2d(5 * c, c, 1)  # eq. 10 (1x1, as TSA's fusion)

    def _stream(self, name: str, feats: list[list[Tensor]]) -> Tensor:
        """One recurrent stream (eqs. 4-7) over the frames; its states at the centre frames,
        (B*(2N+1), C, H/4, W/4)."""
        step, m = STREAM_SOURCES[name], len(feats)
        # Forward streams need frames up to the last centre one, backward ones down to the first.
        order = range(m - 2) if step > 0 else range(m - 1, 1, -1)
        states: dict[int, Tensor] = {}
        for j in order:
            f_j = feats[j]
            if j - step in states:
                aligned = self.align(self.pyramid(states[j - step]), f_j)
            else:
                aligned = torch.zeros_like(f_j[0])  # no source yet: BasicVSR's zero state
            states[j] = self.propagate[name](torch.cat((aligned, f_j[0]), 1))
        return torch.stack([states[j] for j in range(2, m - 2)], 1).flatten(0, 1)

    def forward(self, frames: Tensor) -> Tensor:
        """Temporal features T of the 2N+1 centre frames."""
        b, m = frames.shape[:2]
        levels = self.pyramid(self.predeblur(frames.flatten(0, 1)))
        levels = [lvl.unflatten(0, (b, m)) for lvl in levels]
        feats = [[lvl[:, j] for lvl in levels] for j in range(m)]  # pyramid of each F_j
        streams = {name: self._stream(name, feats) for name in STREAM_SOURCES}
        ref = [lvl[:, 2 : m - 2].flatten(0, 1) for lvl in levels]
        AF = self.align(ref, ref)  # eq. 8
        phi = self.embed_ref(AF)
        weighted = {  # eq. 9
            name: Y * torch.sigmoid((self.embed_stream(Y) * phi).sum(1, keepdim=True))
            for name, Y in streams.items()
        }
        FS, FA, BA, BS = (weighted[name] for name in ("FS", "FA", "BA", "BS"))
        T = lrelu(self.fuse(torch.cat((FS, FA, AF, BA, BS), 1)))  # eq. 10
        return T.unflatten(0, (b, m - 4))


class PyramidEncoder(nn.Module):
    """Full-size input -> [F¹ (C, H/2, W/2), F² (C, H/4, W/4)]: H_frame and H_landmark."""

    def __init__(self, in_channels: int, channels: int, n_blocks: int) -> None:
        super().__init__()
        self.down1 = conv3x3(in_channels, channels, stride=2)
        self.body1 = residual_blocks(channels, n_blocks)
        self.down2 = conv3x3(channels, channels, stride=2)
        self.body2 = residual_blocks(channels, n_blocks)

    def forward(self, x: Tensor) -> list[Tensor]:
        """Features at the two levels, finer first."""
        f1 = self.body1(lrelu(self.down1(x)))
        return [f1, self.body2(lrelu(self.down2(f1)))]


class AudioEncoder(nn.Module):
    """H_audio, DAVD-Net's A-subnet: MFCC window (W_a, n_mfcc) -> a map of the whole face crop,
    sampled at the frames' pixels of the two levels: [F¹_a (1/2), F²_a (1/4)].

    Batch norm standardises each coefficient (c0, the log energy, dwarfs the rest); a
    bidirectional LSTM reads the window; a linear layer makes a C x 7 x 7 seed and upsampling
    residual blocks grow it (x2 each). Readings: the linear layer reads the last layer's final
    states of both directions (2 x hidden), not the flattened sequence, which would give this
    one layer more parameters than the rest of gavn-small; the blocks stop at 56 x 56 (1/4 of a
    224 face) rather than the frame size, since the coarser level is 1/4 and the finer one is
    interpolated.

    The map stands for the whole face crop whatever part of it the frames show: ``crop`` (B, 4)
    gives each item's ``top, left, face_h, face_w`` in pixels (a training patch's place in its
    face); the map is sampled bilinearly at the centres of the level's pixels there. Without it
    the frames are the whole face. So a mouth-shaped activation lands on the mouth in a 96²
    training patch and in the 224² face at inference alike.
    """

    SEED = 7

    def __init__(
        self,
        window: int,
        n_mfcc: int,
        channels: int,
        n_blocks: int,
        hidden: int = 64,
        lstm_layers: int = 3,
        doublings: int = 3,
    ) -> None:
        super().__init__()
        self.window, self.n_mfcc, self.channels = window, n_mfcc, channels
        self.norm = nn.BatchNorm1d(n_mfcc)
        self.lstm = nn.LSTM(n_mfcc, hidden, lstm_layers, batch_first=True, bidirectional=True)
        self.linear = nn.Linear(2 * hidden, channels * self.SEED**2)
        self.up = nn.Sequential(*(UpsampleBlock(channels, n_blocks) for _ in range(doublings)))

    def face_map(self, mfcc: Tensor) -> Tensor:
        """The audio's feature map of the whole face, (B, C, 56, 56)."""
        x = self.norm(mfcc.transpose(1, 2)).transpose(1, 2)
        _, (h, _) = self.lstm(x)
        x = lrelu(self.linear(torch.cat((h[-2], h[-1]), 1)))  # last layer: forward, backward
        return self.up(x.view(-1, self.channels, self.SEED, self.SEED))

    def forward(self, mfcc: Tensor, size: tuple[int, int], crop: Tensor) -> list[Tensor]:
        """Audio features for frames of ``size`` (H, W) at ``crop``: (H/2, W/2), (H/4, W/4)."""
        face_map = self.face_map(mfcc)
        return [sample_face_region(face_map, crop, size, s) for s in (2, 4)]


class GuidedBranch(nn.Module):
    """A guiding modality x (landmarks or audio): its encoder (eq. 12 or 13) and, per level,
    the gate F̂_x = F_x ⊙ σ(Conv([F_x, F_f])) (eq. 14 or 15) and its bias-free slice of eq. 16's
    Conv."""

    def __init__(self, encoder: nn.Module, channels: int) -> None:
        super().__init__()
        self.encoder = encoder
        self.gate = nn.ModuleList(conv3x3(2 * channels, channels) for _ in range(2))
        self.fuse = nn.ModuleList(conv3x3(channels, channels, bias=False) for _ in range(2))

    def forward(self, F_f: list[Tensor], *inputs: object) -> list[Tensor]:
        """This branch's term of I at each level, given the frame features F_f."""
        F_x = self.encoder(*inputs)
        return [
            fuse(x * torch.sigmoid(gate(torch.cat((x, f), 1))))
            for x, f, gate, fuse in zip(F_x, F_f, self.gate, self.fuse, strict=True)
        ]


class IntraFrameIdentity(nn.Module):
    """Eqs. 11-16: a frame, its landmarks and audio -> identity features [I¹ (1/2), I² (1/4)]."""

    def __init__(
        self,
        channels: int,
        n_blocks: int,
        use_landmarks: bool,
        use_audio: bool,
        audio_window: int,
        n_mfcc: int,
        audio_hidden: int,
        heatmap_sigma: float,
    ) -> None:
        super().__init__()
        self.heatmap_sigma = heatmap_sigma
        self.frame = PyramidEncoder(3, channels, n_blocks)  # H_frame, eq. 11
        self.fuse_frame = nn.ModuleList(conv3x3(channels, channels) for _ in range(2))
        self.landmark = (
            GuidedBranch(PyramidEncoder(N_LANDMARKS, channels, n_blocks), channels)
            if use_landmarks
            else None
        )
        self.audio = (
            GuidedBranch(
                AudioEncoder(audio_window, n_mfcc, channels, n_blocks, audio_hidden), channels
            )
            if use_audio
            else None
        )

    def forward(
        self,
        frame: Tensor,
        landmarks: Tensor | None,
        audio: Tensor | None,
        crop: Tensor,
        audio_mask: Tensor | None = None,
    ) -> tuple[Tensor, Tensor]:
        """frame (B, 3, H, W), landmarks (B, 68, 2) in pixels, audio (B, W_a, n_mfcc), crop
        (B, 4) the frame's place in its face; ``audio_mask`` (B,) drops the audio term of the
        items without speech, exactly as ``audio=None`` does for all."""
        F_f = self.frame(frame)
        terms = [[fuse(f) for fuse, f in zip(self.fuse_frame, F_f, strict=True)]]  # eq. 16
        if self.landmark is not None and landmarks is not None:
            heatmaps = landmark_heatmaps(landmarks, *frame.shape[-2:], sigma=self.heatmap_sigma)
            terms.append(self.landmark(F_f, heatmaps))  # eqs. 12, 14, 16
        if self.audio is not None and audio is not None:
            term = self.audio(F_f, audio, frame.shape[-2:], crop)  # eqs. 13, 15, 16
            if audio_mask is not None:
                term = [t * audio_mask.to(t.dtype)[:, None, None, None] for t in term]
            terms.append(term)
        I1, I2 = (sum(level) for level in zip(*terms, strict=True))
        return I1, I2


class Modulation(nn.Module):
    """X·Conv(I) + Conv(I): identity features I scale and shift the features X.

    Initialised to the identity (scale 1, shift 0, whatever I is), so that the warm-up stage
    starts exactly at the stage-1 model and learns how far to depart from it; with PyTorch's
    default init the stage-1 features would be multiplied by a random ±0.1 and swamped by a
    random shift, and the frozen temporal module could never win them back.
    """

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.scale = conv3x3(channels, channels)
        self.shift = conv3x3(channels, channels)
        for conv, bias in ((self.scale, 1.0), (self.shift, 0.0)):
            nn.init.zeros_(conv.weight)
            nn.init.constant_(conv.bias, bias)

    def forward(self, x: Tensor, identity: Tensor) -> Tensor:
        """Modulate ``x`` by the identity features."""
        return x * self.scale(identity) + self.shift(identity)


class Reconstruction(nn.Module):
    """Eqs. 17-18, 3: T (1/4) -> restored frame, modulated by I² and I¹ when ``modulated``.

    Without identity features (the temporal-only model) the two Φ_up apply to T directly.
    """

    def __init__(self, channels: int, up_blocks: tuple[int, int], modulated: bool) -> None:
        super().__init__()
        self.modulate2 = Modulation(channels) if modulated else None
        self.modulate1 = Modulation(channels) if modulated else None
        self.up2 = UpsampleBlock(channels, up_blocks[0])  # Φ_up of eq. 17: 1/4 -> 1/2
        self.up1 = UpsampleBlock(channels, up_blocks[1])  # Φ_up of eq. 18: 1/2 -> 1
        self.conv_hr = conv3x3(channels, channels)
        # Zero: a fresh model returns its input frame exactly and training starts from there
        # rather than from the input plus a random residual (3.7-4.8 dB below the input).
        self.conv_last = conv3x3(channels, 3)
        nn.init.zeros_(self.conv_last.weight)
        nn.init.zeros_(self.conv_last.bias)

    def forward(
        self, T: Tensor, frame: Tensor, I1: Tensor | None = None, I2: Tensor | None = None
    ) -> Tensor:
        """The restored frame from T, the input frame and the identity features I¹, I²."""
        I_hat2 = self.up2(T if I2 is None else self.modulate2(T, I2))  # eq. 17
        I_hat1 = self.up1(I_hat2 if I1 is None else self.modulate1(I_hat2, I1))  # eq. 18
        return frame + self.conv_last(lrelu(self.conv_hr(I_hat1)))  # eq. 3: residual


class GAVN(nn.Module):
    """GAVN: frames (B, 2N+5, 3, H, W) in [0, 1], per centre frame its MFCC window and 68
    landmarks -> the 2N+1 restored centre frames (B, 2N+1, 3, H, W).

    ``use_identity=False`` is the temporal-only (stage-1) model; ``use_audio`` and
    ``use_landmarks`` build the identity module with or without those branches. Frames of any
    size from 16 x 16 up are reflect-padded (right, bottom) to a multiple of 16 and the output
    cropped back.
    """

    def __init__(
        self,
        channels: int = 64,
        n: int = 1,
        deform_groups: int = 8,
        deblur_blocks: int = 5,
        prop_blocks: int = 2,
        identity_blocks: int = 2,
        up_blocks: tuple[int, int] = (10, 2),
        audio_window: int = MFCC_WINDOW,
        n_mfcc: int = N_MFCC,
        audio_hidden: int = 64,
        heatmap_sigma: float = 2.0,
        use_identity: bool = True,
        use_audio: bool = True,
        use_landmarks: bool = True,
        crop_size: int = 224,
    ) -> None:
        super().__init__()
        self.n = n
        # Not architecture: the face crop side it is trained on, which ``restore`` cuts faces
        # at (the audio map's geometry, ``AudioEncoder``, is relative to that crop).
        self.crop_size = crop_size
        self.frames_in, self.frames_out = 2 * n + 5, 2 * n + 1
        self.audio_window, self.n_mfcc = audio_window, n_mfcc
        self.use_audio = use_identity and use_audio
        self.use_landmarks = use_identity and use_landmarks
        self.temporal = InterFrameTemporal(channels, deform_groups, deblur_blocks, prop_blocks)
        self.identity = (
            IntraFrameIdentity(
                channels,
                identity_blocks,
                self.use_landmarks,
                self.use_audio,
                audio_window,
                n_mfcc,
                audio_hidden,
                heatmap_sigma,
            )
            if use_identity
            else None
        )
        self.reconstruction = Reconstruction(channels, tuple(up_blocks), modulated=use_identity)
        # An evaluation switch (``ablate``): T replaced by zeros measures what the temporal
        # module brings.
        self.temporal_off = False

    @property
    def contract(self) -> RestorerContract:
        """2N+5 crops in, 2N+1 out; audio and landmarks when the identity module has them;
        evaluation may switch off audio, landmarks and the temporal module (T = 0)."""
        return RestorerContract(
            frames_in=self.frames_in,
            frames_out=self.frames_out,
            crop_size=self.crop_size,
            audio=AudioInput(self.audio_window, self.n_mfcc) if self.use_audio else None,
            landmarks=self.use_landmarks,
            ablations=("audio", "landmarks", "temporal"),
        )

    @contextlib.contextmanager
    def ablate(self, parts: frozenset[str]) -> Iterator[None]:
        """Run with ``parts`` switched off inside the model: ``temporal`` (T = 0). Audio and
        landmarks are switched off by not passing them."""
        unknown = set(parts) - {"temporal"}
        if unknown:
            raise ValueError(f"GAVN cannot switch off {sorted(unknown)} inside itself")
        self.temporal_off = "temporal" in parts
        try:
            yield
        finally:
            self.temporal_off = False

    def forward(
        self,
        frames: Tensor,
        audio: Tensor | None = None,
        landmarks: Tensor | None = None,
        crop: Tensor | None = None,
        audio_mask: Tensor | None = None,
    ) -> Tensor:
        """Restore the centre frames; audio (B, 2N+1, W_a, n_mfcc), landmarks (B, 2N+1, 68, 2).

        ``crop`` (B, 4): where the frames lie in their whole face crop (``top, left, face_h,
        face_w`` in pixels; a training patch), default the whole face. ``audio_mask`` (B,):
        which items have speech (default all, when ``audio`` is given).
        """
        self._check(frames, audio, landmarks)
        b, m, _, h, w = frames.shape
        if crop is None:
            crop = frames.new_tensor([0.0, 0.0, h, w]).expand(b, 4)
        k = self.frames_out
        # Reflect-pad right and bottom to a multiple of 16 (landmark coordinates stay valid).
        ph, pw = -h % SIZE_MULTIPLE, -w % SIZE_MULTIPLE
        x = F.pad(frames.flatten(0, 1), (0, pw, 0, ph), mode="reflect").unflatten(0, (b, m))
        T = self.temporal(x).flatten(0, 1)
        if self.temporal_off:
            T = torch.zeros_like(T)
        centre = x[:, 2 : m - 2].flatten(0, 1)
        I1 = I2 = None
        if self.identity is not None:
            I1, I2 = self.identity(
                centre,
                None if landmarks is None else landmarks.flatten(0, 1),
                None if audio is None else audio.flatten(0, 1),
                crop.repeat_interleave(k, 0),
                None if audio_mask is None else audio_mask.repeat_interleave(k, 0),
            )
        out = self.reconstruction(T, centre, I1, I2).unflatten(0, (b, k))
        return out[..., :h, :w]

    def _check(self, frames: Tensor, audio: Tensor | None, landmarks: Tensor | None) -> None:
        """Raise unless the inputs have the shapes of the contract."""
        if frames.ndim != 5 or frames.shape[1:3] != (self.frames_in, 3):
            raise ValueError(
                f"frames must be (B, {self.frames_in}, 3, H, W); got {tuple(frames.shape)}"
            )
        b, _, _, h, w = frames.shape
        if min(h, w) < SIZE_MULTIPLE:
            raise InputError(f"GAVN needs frames of at least 16x16 pixels; got {w}x{h}")
        expected = {
            "audio": (audio, (b, self.frames_out, self.audio_window, self.n_mfcc)),
            "landmarks": (landmarks, (b, self.frames_out, N_LANDMARKS, 2)),
        }
        for name, (t, shape) in expected.items():
            if t is not None and tuple(t.shape) != shape:
                raise ValueError(f"{name} must be {shape}; got {tuple(t.shape)}")

    def dummy_inputs(self, height: int, width: int) -> dict[str, Tensor]:
        """Random forward arguments for one window of ``height`` x ``width`` frames (batch 1)."""
        inputs = {"frames": torch.rand(1, self.frames_in, 3, height, width)}
        if self.use_audio:
            inputs["audio"] = torch.randn(1, self.frames_out, self.audio_window, self.n_mfcc)
        if self.use_landmarks:
            scale = torch.tensor([width - 1.0, height - 1.0])
            inputs["landmarks"] = torch.rand(1, self.frames_out, N_LANDMARKS, 2) * scale
        return inputs
