"""The one registry of models: a name (used by ``type:`` in configs) → class and its settings.

Every model is imported explicitly here; nothing scans folders at import time.

What every registered model provides (callers rely on nothing else):
- ``contract``: what it consumes and produces (``avrestore.models.contract``);
- ``dummy_inputs(height, width) -> dict[str, Tensor]``: keyword arguments of one forward call
  (batch 1) on frames of that size, every optional input it uses present (for ``avrestore
  models`` and the benchmarks).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from torch import nn

from avrestore.errors import InputError
from avrestore.models.basicvsrpp import BasicVSRPlusPlus
from avrestore.models.davd_net import DAVDNet
from avrestore.models.dbpn import DBPN
from avrestore.models.edvr import EDVR
from avrestore.models.gavn import GAVN
from avrestore.models.landmark_net import LandmarkNet
from avrestore.models.ts_vqgan import TSVQGAN
from avrestore.models.vq_restorer import PAPER_VQGAN, SMALL_VQGAN, VQRestorer


@dataclass(frozen=True)
class ModelSpec:
    """A registered model: the class to build and the keyword arguments of this size."""

    cls: type[nn.Module]
    kwargs: dict[str, Any] = field(default_factory=dict)
    summary: str = ""


REGISTRY: dict[str, ModelSpec] = {
    "edvr": ModelSpec(
        EDVR, {}, "EDVR-M peer, same-size form: 64 features, PCD with 8 deform groups, TSA"
    ),
    "edvr-small": ModelSpec(
        EDVR,
        {"num_feat": 32, "deform_groups": 4, "num_extract_block": 3, "num_reconstruct_block": 5},
        "EDVR for CPU training: 32 features, 4 deform groups, 3 + 5 residual blocks",
    ),
    "gavn": ModelSpec(GAVN, {}, "GAVN at paper scale: 64 channels, PCD with 8 deform groups"),
    "gavn-small": ModelSpec(
        GAVN,
        {
            "channels": 32,
            "deform_groups": 2,
            "deblur_blocks": 2,
            "prop_blocks": 1,
            "identity_blocks": 1,
            "up_blocks": (3, 1),
            "audio_hidden": 32,
        },
        "GAVN for CPU training: 32 channels, 2 deform groups, fewer residual blocks",
    ),
    "gavn-tiny": ModelSpec(
        GAVN,
        {
            "channels": 16,
            "deform_groups": 2,
            "deblur_blocks": 3,
            "prop_blocks": 2,
            "identity_blocks": 2,
            "up_blocks": (4, 2),
            "audio_hidden": 32,
        },
        "GAVN for real time on a CPU: 16 channels (oneDNN's bf16 kernels run it 1.6-2.3x as fast "
        "as at 20-32), 2 deform groups, more residual blocks than gavn-small",
    ),
    "basicvsrpp": ModelSpec(
        BasicVSRPlusPlus,
        {},
        "BasicVSR++ same-size, paper scale: c64, 7 blocks/branch, 16 deform groups, SPyNet; 15->11",
    ),
    "basicvsrpp-small": ModelSpec(
        BasicVSRPlusPlus,
        {"mid_channels": 32, "num_blocks": 3, "deform_groups": 8},
        "BasicVSR++ for CPU training: c32, 3 blocks/branch, 8 deform groups, SPyNet; 15->11",
    ),
    "dbpn": ModelSpec(
        DBPN, {}, "D-DBPN x4 at paper scale (T = 7, n0 256, nR 64) on the pixel-unshuffled frame"
    ),
    "dbpn-small": ModelSpec(
        DBPN,
        {"base_filters": 32, "feature_filters": 64, "stages": 3},
        "D-DBPN x4 for CPU training: T = 3, n0 64, nR 32",
    ),
    "dbpn-tiny": ModelSpec(
        DBPN,
        {"base_filters": 16, "feature_filters": 32, "stages": 2},
        "D-DBPN x4 for real time on a laptop CPU: T = 2, n0 32, nR 16",
    ),
    "davd-net": ModelSpec(
        DAVDNet,
        {},
        "DAVD-Net at paper scale: c64 at full size, PCD 8 groups, BiLSTM 128, SAF; CPM with qp",
    ),
    "davd-net-small": ModelSpec(
        DAVDNet,
        {
            "channels": 32,
            "deform_groups": 4,
            "front_blocks": 3,
            "v_blocks": 3,
            "reconstruction_blocks": 5,
            "scale": 2,
            "audio_hidden": 32,
            "audio_up_blocks": 4,
        },
        "DAVD-Net for CPU training: c32 at 1/2 size, PCD 4 groups, 3/3/5 blocks, BiLSTM 32",
    ),
    "ts-vqgan": ModelSpec(
        TSVQGAN,
        {"ch": 64, "z_dim": 256, "n_codes": 1024},
        "TS-VQGAN (PGTFormer) autoencoder, paper scale at 224: ch 64, 14x14 codes, 1024 x 256-D",
    ),
    "ts-vqgan-small": ModelSpec(
        TSVQGAN,
        {"ch_mult": SMALL_VQGAN["ch_mult"]},
        "TS-VQGAN sized for the CPU: ch 32, 3-frame attention at 28x28, 512 x 64-D EMA codes",
    ),
    "vq-restorer": ModelSpec(
        VQRestorer,
        {"vqgan": PAPER_VQGAN, "feature_dim": 128, "cnn_channels": 128, "fidelity_channels": 64},
        "Audio-guided VQ restorer: FHOG + 80-D MFCC -> 3D-CNN codes -> frozen ts-vqgan; 7->3",
    ),
    "vq-restorer-small": ModelSpec(
        VQRestorer,
        {},
        "VQ restorer for CPU training: d 64, 3D-CNN 64, on ts-vqgan-small; 7->3",
    ),
    "landmark-net": ModelSpec(
        LandmarkNet, {}, "Audio-assisted PFLD: 68 landmarks from a degraded 112x112 face crop"
    ),
}


def build(name: str, **overrides: Any) -> nn.Module:
    """Build the registered model ``name``; ``overrides`` replace its default arguments."""
    if name not in REGISTRY:
        raise InputError(f"unknown model {name!r}; known: {', '.join(sorted(REGISTRY))}")
    spec = REGISTRY[name]
    return spec.cls(**{**spec.kwargs, **overrides})
