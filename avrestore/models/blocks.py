"""Small building blocks shared by the restoration networks."""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn


def lrelu(x: Tensor) -> Tensor:
    """The leaky ReLU (slope 0.1) that EDVR and BasicVSR use between convolutions."""
    return F.leaky_relu(x, 0.1)


def conv3x3(c_in: int, c_out: int, stride: int = 1, bias: bool = True) -> nn.Conv2d:
    """A 3x3 convolution that keeps the size (stride 1) or halves it (stride 2)."""
    return nn.Conv2d(c_in, c_out, 3, stride, 1, bias=bias)


# Convolutions that start at zero on purpose: an identity head's last layer, DCN offsets.
ZERO_STARTS = ("conv_last", "conv_offset")


def he_init(model: nn.Module) -> None:
    """Kaiming-normal (He, for the leaky ReLU's slope 0.1) weights and zero biases for every
    convolution of ``model`` except those inside residual blocks (which keep their x0.1 He
    start) and those named in ``ZERO_STARTS``. Reads no values: it works on the meta device."""
    in_blocks = {
        id(m) for b in model.modules() if isinstance(b, ResidualBlock) for m in b.modules()
    }
    for name, module in model.named_modules():
        weight = getattr(module, "weight", None)
        if id(module) in in_blocks or name.rsplit(".", 1)[-1] in ZERO_STARTS:
            continue
        if isinstance(weight, nn.Parameter) and weight.ndim == 4:
            nn.init.kaiming_normal_(weight, a=0.1, nonlinearity="leaky_relu")
            if isinstance(getattr(module, "bias", None), nn.Parameter):
                nn.init.zeros_(module.bias)


class ResidualBlock(nn.Module):
    """x + conv(relu(conv(x))) without normalisation (EDSR/EDVR's ResidualBlockNoBN)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv1 = conv3x3(channels, channels)
        self.conv2 = conv3x3(channels, channels)
        # Small initial residuals (x0.1, as BasicSR) keep a deep stack near identity at the start.
        for conv in (self.conv1, self.conv2):
            nn.init.kaiming_normal_(conv.weight)
            conv.weight.data.mul_(0.1)
            nn.init.zeros_(conv.bias)

    def forward(self, x: Tensor) -> Tensor:
        """Add the block's residual to ``x``."""
        return x + self.conv2(F.relu(self.conv1(x)))


def residual_blocks(channels: int, n: int) -> nn.Sequential:
    """``n`` residual blocks in a row (an empty Sequential, the identity, when n = 0)."""
    return nn.Sequential(*(ResidualBlock(channels) for _ in range(n)))


class UpsampleBlock(nn.Module):
    """Residual blocks, then x2 upsampling by sub-pixel convolution (pixel shuffle)."""

    def __init__(self, channels: int, n_blocks: int) -> None:
        super().__init__()
        self.body = residual_blocks(channels, n_blocks)
        self.expand = conv3x3(channels, 4 * channels)

    def forward(self, x: Tensor) -> Tensor:
        """(B, C, H, W) -> (B, C, 2H, 2W)."""
        return lrelu(F.pixel_shuffle(self.expand(self.body(x)), 2))


class UpsampleX4Head(nn.Module):
    """EDVR's and BasicVSR++'s reconstruction head: 1/4-size features -> a full-size RGB
    residual, by two (conv to 4C, pixel shuffle x2, leaky ReLU), ``conv_hr`` and ``conv_last``.

    ``conv_last`` starts at zero, so a model that adds the head's output to its input returns
    the input exactly when fresh (the peers' reading of GAVN's identity initialisation).
    """

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.upconv1 = conv3x3(channels, 4 * channels)
        self.upconv2 = conv3x3(channels, 4 * channels)
        self.conv_hr = conv3x3(channels, channels)
        self.conv_last = conv3x3(channels, 3)
        nn.init.zeros_(self.conv_last.weight)
        nn.init.zeros_(self.conv_last.bias)

    def forward(self, x: Tensor) -> Tensor:
        """(B, C, H/4, W/4) -> (B, 3, H, W)."""
        x = lrelu(F.pixel_shuffle(self.upconv1(x), 2))
        x = lrelu(F.pixel_shuffle(self.upconv2(x), 2))
        return self.conv_last(lrelu(self.conv_hr(x)))
