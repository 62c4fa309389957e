"""Synthetic degradations of the papers' protocol: H.264 compression at a CRF, Gaussian blur,
bicubic low resolution, and chains of them, on frame arrays and on video files."""

from avrestore.degrade.blur import blur, gaussian_sigma
from avrestore.degrade.chain import PAPER_RANGES, Degradation, DegradationRanges
from avrestore.degrade.compression import compress, compress_with_qp
from avrestore.degrade.resize import downscale, downscaled_size, upscale
from avrestore.degrade.video import VISUALLY_LOSSLESS_CRF, degrade_video

__all__ = [
    "PAPER_RANGES",
    "VISUALLY_LOSSLESS_CRF",
    "Degradation",
    "DegradationRanges",
    "blur",
    "compress",
    "compress_with_qp",
    "degrade_video",
    "downscale",
    "downscaled_size",
    "gaussian_sigma",
    "upscale",
]
