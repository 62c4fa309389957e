"""Feature maps that stand for the whole face crop (the audio's), read where a frame lies in it.

The audio map of GAVN and DAVD-Net means one thing everywhere: it covers the whole face crop,
and a training patch or a whole crop at inference reads the part under it, by its ``crop``
(top, left, face height, face width).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor


def sample_face_region(
    face_map: Tensor, crop: Tensor, size: tuple[int, int], stride: int
) -> Tensor:
    """``face_map`` (B, C, h, w) of whole faces, sampled at the pixel centres of a stride-
    ``stride`` level of the (H, W) frames that lie at ``crop`` (B, 4: top, left, face_h,
    face_w) in their faces; beyond the face the border value is held."""
    h, w = size[0] // stride, size[1] // stride
    # Positions in float32 whatever the autocast dtype: bf16 would round them to ~1 pixel.
    top, left, face_h, face_w = crop.float().unbind(1)
    centres = torch.arange(h, device=face_map.device, dtype=torch.float32)
    ys = (top[:, None] + (centres + 0.5) * stride) / face_h[:, None] * 2 - 1
    centres = torch.arange(w, device=face_map.device, dtype=torch.float32)
    xs = (left[:, None] + (centres + 0.5) * stride) / face_w[:, None] * 2 - 1
    grid = torch.stack(torch.broadcast_tensors(xs[:, None, :], ys[:, :, None]), -1)
    out = F.grid_sample(
        face_map.float(), grid, mode="bilinear", padding_mode="border", align_corners=False
    )
    return out.to(face_map.dtype)
