"""SyncNet (Chung & Zisserman 2016) as released in joonson/syncnet_python (``SyncNetModel.S``).

Layer for layer the released network, module names and indices included, so that the
released ``syncnet_v2.model`` state dict loads by name. Audio stream: 13 MFCCs × 20 steps
(0.2 s at 100 Hz) → 1024-d; video stream: 5 BGR face crops of 224×224 in [0, 255] → 1024-d.
"""

from __future__ import annotations

import os

import torch
from torch import nn

from avrestore.metrics.pretrained import load_checked, read_state_dict

EMBEDDING = 1024


def _conv_bn_relu(conv: nn.Module, bn: nn.Module) -> list[nn.Module]:
    return [conv, bn, nn.ReLU()]


def _audio_trunk() -> nn.Sequential:
    return nn.Sequential(
        *_conv_bn_relu(nn.Conv2d(1, 64, 3, padding=1), nn.BatchNorm2d(64)),
        nn.MaxPool2d(1, stride=1),
        *_conv_bn_relu(nn.Conv2d(64, 192, 3, padding=1), nn.BatchNorm2d(192)),
        nn.MaxPool2d(3, stride=(1, 2)),
        *_conv_bn_relu(nn.Conv2d(192, 384, 3, padding=1), nn.BatchNorm2d(384)),
        *_conv_bn_relu(nn.Conv2d(384, 256, 3, padding=1), nn.BatchNorm2d(256)),
        *_conv_bn_relu(nn.Conv2d(256, 256, 3, padding=1), nn.BatchNorm2d(256)),
        nn.MaxPool2d(3, stride=2),
        *_conv_bn_relu(nn.Conv2d(256, 512, (5, 4)), nn.BatchNorm2d(512)),
    )


def _lip_trunk() -> nn.Sequential:
    return nn.Sequential(
        *_conv_bn_relu(nn.Conv3d(3, 96, (5, 7, 7), stride=(1, 2, 2)), nn.BatchNorm3d(96)),
        nn.MaxPool3d((1, 3, 3), stride=(1, 2, 2)),
        *_conv_bn_relu(
            nn.Conv3d(96, 256, (1, 5, 5), stride=(1, 2, 2), padding=(0, 1, 1)), nn.BatchNorm3d(256)
        ),
        nn.MaxPool3d((1, 3, 3), stride=(1, 2, 2), padding=(0, 1, 1)),
        *_conv_bn_relu(nn.Conv3d(256, 256, (1, 3, 3), padding=(0, 1, 1)), nn.BatchNorm3d(256)),
        *_conv_bn_relu(nn.Conv3d(256, 256, (1, 3, 3), padding=(0, 1, 1)), nn.BatchNorm3d(256)),
        *_conv_bn_relu(nn.Conv3d(256, 256, (1, 3, 3), padding=(0, 1, 1)), nn.BatchNorm3d(256)),
        nn.MaxPool3d((1, 3, 3), stride=(1, 2, 2)),
        *_conv_bn_relu(nn.Conv3d(256, 512, (1, 6, 6)), nn.BatchNorm3d(512)),
    )


def _head() -> nn.Sequential:
    return nn.Sequential(
        nn.Linear(512, 512), nn.BatchNorm1d(512), nn.ReLU(), nn.Linear(512, EMBEDDING)
    )


class SyncNet(nn.Module):
    """The two-stream SyncNet; attribute names are those of the released state dict."""

    def __init__(self) -> None:
        super().__init__()
        self.netcnnaud = _audio_trunk()
        self.netfcaud = _head()
        self.netfclip = _head()
        self.netcnnlip = _lip_trunk()

    def forward_aud(self, mfcc: torch.Tensor) -> torch.Tensor:
        """(N, 1, 13, 20) MFCC windows → (N, 1024) audio embeddings."""
        return self.netfcaud(self.netcnnaud(mfcc).flatten(1))

    def forward_lip(self, clips: torch.Tensor) -> torch.Tensor:
        """(N, 3, 5, 224, 224) BGR face crops in [0, 255] → (N, 1024) video embeddings."""
        return self.netfclip(self.netcnnlip(clips).flatten(1))


def load_syncnet(path: str | os.PathLike | None) -> SyncNet | None:
    """SyncNet with ``syncnet_v2.model`` loaded (weights_only), in eval mode; ``None`` without."""
    if path is None:
        return None
    model = SyncNet()
    # The release predates BatchNorm's ``num_batches_tracked`` buffers; they are unused in eval.
    needed = [k for k in model.state_dict() if not k.endswith("num_batches_tracked")]
    return load_checked(model, read_state_dict(path), needed, f"SyncNet weights {path}")
