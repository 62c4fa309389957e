"""Audio-assisted PFLD: 68 face landmarks from a degraded frame and the audio window around it.

The backbone and multi-scale head follow PFLD ("A Practical Facial Landmark Detector", Guo et
al. 2019, Table 1, width 1X). GAVN retrains it on low-quality frames against the landmarks a
detector finds on the high-quality frames, because detectors trained on clean faces fail on
degraded ones; an embedding of the frame's MFCC window joins the head, since speech tells
where the mouth is when the pixels no longer do. PFLD's auxiliary pose branch is left out: it
needs Euler-angle labels we do not have and is not used at inference.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from avrestore.audio.features import MFCC_WINDOW, N_MFCC
from avrestore.models.contract import N_LANDMARKS, AudioInput, LandmarkerContract

INPUT_SIZE = 112  # PFLD's training resolution; any input is resized to it

# PFLD Table 1 inverted-residual stages: (expansion t, channels c, repeats n, stride s).
_BOTTLENECKS = ((2, 64, 5, 2), (2, 128, 1, 2), (4, 128, 6, 1), (2, 16, 1, 1))


def _conv_bn_relu(c_in: int, c_out: int, kernel: int, stride: int, groups: int = 1) -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, kernel, stride, kernel // 2, groups=groups, bias=False),
        nn.BatchNorm2d(c_out),
        nn.ReLU(inplace=True),
    )


class InvertedResidual(nn.Module):
    """MobileNetV2 bottleneck: 1x1 expand, 3x3 depthwise, linear 1x1 project (+ identity)."""

    def __init__(self, c_in: int, c_out: int, stride: int, expansion: int) -> None:
        super().__init__()
        hidden = c_in * expansion
        self.body = nn.Sequential(
            _conv_bn_relu(c_in, hidden, 1, 1),
            _conv_bn_relu(hidden, hidden, 3, stride, groups=hidden),
            nn.Conv2d(hidden, c_out, 1, bias=False),
            nn.BatchNorm2d(c_out),
        )
        self.identity = stride == 1 and c_in == c_out

    def forward(self, x: Tensor) -> Tensor:
        """Apply the bottleneck, adding the input back when shapes allow."""
        return x + self.body(x) if self.identity else self.body(x)


class AudioEmbedding(nn.Module):
    """Embeds an MFCC window (B, W_a, n_mfcc) as a vector (B, dim) with a two-layer MLP.

    Each coefficient is standardised by batch norm first: raw MFCCs differ in scale by orders
    of magnitude (c0 is the log energy), which would otherwise swamp the rest. The window is
    flattened rather than pooled so the MLP knows which time step is the frame's own.
    """

    def __init__(self, window: int, n_mfcc: int, dim: int) -> None:
        super().__init__()
        self.window, self.n_mfcc = window, n_mfcc
        self.norm = nn.BatchNorm1d(n_mfcc)
        self.mlp = nn.Sequential(
            nn.Linear(window * n_mfcc, 2 * dim),
            nn.ReLU(inplace=True),
            nn.Linear(2 * dim, dim),
            nn.ReLU(inplace=True),
        )

    def forward(self, mfcc: Tensor) -> Tensor:
        """Embed a batch of MFCC windows."""
        if mfcc.shape[1:] != (self.window, self.n_mfcc):
            raise ValueError(
                f"audio windows must be (B, {self.window}, {self.n_mfcc}); got {tuple(mfcc.shape)}"
            )
        x = self.norm(mfcc.transpose(1, 2)).flatten(1)
        return self.mlp(x)


class LandmarkNet(nn.Module):
    """PFLD landmark detector whose fully connected head also sees an audio embedding.

    ``forward(frames, audio)`` takes frames (B, 3, H, W) in [0, 1] and MFCC windows
    (B, W_a, n_mfcc) or None, and returns landmarks (B, 68, 2) as (x, y) in the input's pixel
    coordinates, pixel centres at integers (dlib's convention).

    With ``use_audio=False`` the audio parameters do not exist and ``audio`` is ignored, so
    callers can pass it to either variant. With ``use_audio=True`` a missing window (None)
    becomes a zero embedding: after the ReLU that is the "no audio evidence" point of the
    embedding space, and ``audio_dropout`` zeroes the embedding of that fraction of samples
    during training so the head learns to use it as such.
    """

    def __init__(
        self,
        use_audio: bool = True,
        audio_window: int = MFCC_WINDOW,
        n_mfcc: int = N_MFCC,
        audio_dim: int = 64,
        audio_dropout: float = 0.1,
    ) -> None:
        super().__init__()
        self.use_audio = use_audio
        self.audio_dim = audio_dim
        self.audio_dropout = audio_dropout
        self.stem = nn.Sequential(
            _conv_bn_relu(3, 64, 3, 2),  # 112 -> 56
            _conv_bn_relu(64, 64, 3, 1, groups=64),
        )
        blocks: list[nn.Module] = []
        c_in = 64
        for t, c, n, s in _BOTTLENECKS:
            for i in range(n):
                blocks.append(InvertedResidual(c_in, c, s if i == 0 else 1, t))
                c_in = c
        self.bottlenecks = nn.Sequential(*blocks)  # S1: 16 x 14 x 14
        self.conv7 = _conv_bn_relu(16, 32, 3, 2)  # S2: 32 x 7 x 7
        self.conv8 = nn.Sequential(nn.Conv2d(32, 128, 7), nn.ReLU(inplace=True))  # S3: 128 x 1 x 1
        self.audio = AudioEmbedding(audio_window, n_mfcc, audio_dim) if use_audio else None
        head_in = 16 + 32 + 128 + (audio_dim if use_audio else 0)
        self.head = nn.Linear(head_in, N_LANDMARKS * 2)

    @property
    def contract(self) -> LandmarkerContract:
        """One crop (resized to 112²) in, 68 points out; with audio, the frame's MFCC window."""
        audio = None if self.audio is None else AudioInput(self.audio.window, self.audio.n_mfcc)
        return LandmarkerContract(INPUT_SIZE, audio)

    def dummy_inputs(self, height: int, width: int) -> dict[str, Tensor]:
        """Random forward arguments for one ``height`` x ``width`` frame (batch 1)."""
        inputs = {"frames": torch.rand(1, 3, height, width)}
        if self.audio is not None:
            inputs["audio"] = torch.randn(1, self.audio.window, self.audio.n_mfcc)
        return inputs

    def _audio_features(self, audio: Tensor | None, frames: Tensor) -> Tensor:
        if audio is None:
            return frames.new_zeros(frames.shape[0], self.audio_dim)
        embedding = self.audio(audio.to(frames.dtype))
        if self.training and self.audio_dropout > 0:
            keep = torch.rand(embedding.shape[0], 1, device=embedding.device) >= self.audio_dropout
            embedding = embedding * keep
        return embedding

    def forward(self, frames: Tensor, audio: Tensor | None = None) -> Tensor:
        """Predict landmarks (B, 68, 2) in the input's pixel coordinates."""
        if frames.ndim != 4 or frames.shape[1] != 3:
            raise ValueError(f"frames must be (B, 3, H, W); got {tuple(frames.shape)}")
        h, w = frames.shape[-2:]
        # Channels-last lets oneDNN run the 1x1 and depthwise convolutions (about 2x on CPU).
        x = frames.contiguous(memory_format=torch.channels_last)
        if (h, w) != (INPUT_SIZE, INPUT_SIZE):
            # Antialiased: a 224 face halved by plain bilinear sampling would alias.
            x = F.interpolate(x, size=(INPUT_SIZE, INPUT_SIZE), mode="bilinear", antialias=True)
        s1 = self.bottlenecks(self.stem(x))
        s2 = self.conv7(s1)
        s3 = self.conv8(s2)
        # Multi-scale fully connected head: pooled S1, S2 and S3 side by side (PFLD Fig. 2).
        features = [s1.mean((2, 3)), s2.mean((2, 3)), s3.flatten(1)]
        if self.use_audio:
            features.append(self._audio_features(audio, frames))
        uv = self.head(torch.cat(features, 1)).view(-1, N_LANDMARKS, 2)
        # uv is a fraction of the image extent; pixel centres sit half a pixel in.
        return uv * uv.new_tensor([w, h]) - 0.5

    @torch.inference_mode()
    def predict_frames(
        self, frames: np.ndarray, audio: np.ndarray | None = None, batch: int = 32
    ) -> np.ndarray:
        """Landmarks (T, 68, 2) float32 of RGB uint8 frames (T, H, W, 3), with their MFCC
        windows (T, W_a, n_mfcc) or None, in batches of ``batch`` frames (eval mode)."""
        was_training = self.training
        self.eval()
        device = next(self.parameters()).device
        out = []
        for s in range(0, len(frames), batch):
            x = torch.from_numpy(np.array(frames[s : s + batch])).to(device)
            a = None if audio is None else torch.from_numpy(np.array(audio[s : s + batch]))
            y = self(x.permute(0, 3, 1, 2).float() / 255, None if a is None else a.to(device))
            out.append(y.float().cpu().numpy())
        self.train(was_training)
        return np.concatenate(out) if out else np.zeros((0, N_LANDMARKS, 2), np.float32)


def landmark_loss(pred: Tensor, target: Tensor, size: tuple[int, int]) -> Tensor:
    """PFLD's L2 loss (Eq. 2, all weights 1): mean squared landmark distance in crop units.

    ``pred`` and ``target`` are (B, 68, 2) pixel coordinates in an image of ``size`` (W, H);
    dividing by the size makes the loss the same whatever resolution the crop was taken at.
    """
    scale = pred.new_tensor(size)
    return ((pred - target) / scale).pow(2).sum(-1).mean()
