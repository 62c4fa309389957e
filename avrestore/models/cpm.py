"""DAVD-Net's constraining projection module (CPM, eqs. 5-8 of Zhang et al., CVPR 2020) on an
H.264 (x264) stream.

The paper clips each transform coefficient of the network's estimate Ỹ minus the prediction
frame P into the quantisation cell of the decoded residual Ê^dct (eqs. 6-7) and transforms back
(eq. 8). Because the transform T is linear and the decoded frame is Y = P + Ê (before
deblocking), T(Ỹ − P) − Ê^dct = T(Ỹ − Y): the prediction frame and residual cancel, and
eqs. 7-8 become, per transform block,

    X̂ = Y + T⁻¹( clip( T(Ỹ − Y), −Q/2, +Q/2 ) )

(``design/peers.md`` §2.5). So the projection needs only the decoded frame Y, the transform
grid and the quantiser step Q, all of which we have; the paper's own bit-stream tool (for P,
Ê and the partition) is not needed.

Readings (each explained where it is made):
- The transform is H.264's 4x4 integer core transform with its rows normalised, which makes it
  exactly orthonormal (``TRANSFORM_4X4``), on the 4x4 grid of the luma plane. x264 codes some
  macroblocks with the 8x8 transform, which FFmpeg does not export; projecting those on the
  4x4 grid changed the in-box statistics by under 0.1 % (``peers.md`` §2.5).
- Q is ``qstep(QP)``, the H.264 step on those orthonormal coefficients in 8-bit sample units
  (flat scaling lists, x264's default). Which QP: ``avrestore.media.qp`` (max of the
  macroblock's and the picture's).
- Luma only: Y' of the estimate and of the decoded frame by the stream's own matrix and range
  (``media.colour``; our writer's BT.601 limited range unless the stream says otherwise).
  Chroma is left as the network made it.
- The clamped luma change goes back to RGB by adding the same amount to R, G and B: that moves
  Y' by exactly (luma scale) x that amount (Kr + Kg + Kb = 1) and leaves Cb and Cr unchanged,
  so the output's Y' lies in the box exactly and its chroma is the estimate's. The output is
  not clipped to [0, 1] (clipping would move it out of the box; the caller clamps when saving).
- κ (``kappa``, default ½) scales the box: ½ is the paper's ±Q/2.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from avrestore.media.colour import DEFAULT_SPEC, MATRICES, ColourSpec, _scales

BLOCK = 4  # the transform block side
# H.264's 4x4 forward core transform (ITU-T H.264 §8.5.12, its inverse's transpose): rows are
# orthogonal with norms 2, √10, 2, √10; divided by them it is exactly orthonormal.
_CORE_4X4 = ((1, 1, 1, 1), (2, 1, -1, -2), (1, -1, -1, 1), (1, -2, 2, -1))
# Qstep for QP 0-5; it doubles every 6 QP (Richardson, "The H.264 Advanced Video Compression
# Standard", Table 7.2).
QSTEP_BASE = (0.625, 0.6875, 0.8125, 0.875, 1.0, 1.125)
MAX_QP = 51


def transform_matrix(
    dtype: torch.dtype = torch.float32, device: torch.device | None = None
) -> Tensor:
    """H.264's 4x4 core transform with each row normalised: an orthonormal (4, 4) matrix T."""
    core = torch.tensor(_CORE_4X4, dtype=torch.float64)
    t = core / core.norm(dim=1, keepdim=True)
    return t.to(dtype=dtype, device=device)


def qstep(qp: Tensor) -> Tensor:
    """H.264's quantiser step for integer QPs (0-51): QSTEP_BASE[QP mod 6] · 2^⌊QP/6⌋."""
    qp = torch.as_tensor(qp)
    if qp.is_floating_point() and not torch.equal(qp, qp.round()):
        raise ValueError("QPs must be whole numbers")
    qp = qp.long()  # an integer index (a uint8 tensor would index as a mask)
    if bool(((qp < 0) | (qp > MAX_QP)).any()):
        raise ValueError(f"QPs must lie in 0-{MAX_QP}")
    base = torch.tensor(QSTEP_BASE, dtype=torch.float32, device=qp.device)
    return base[qp % 6] * torch.pow(2.0, (qp // 6).float())


def step_or_unbounded(qp: Tensor) -> Tensor:
    """``qstep`` of each QP, and Q = ∞ (no bound) where the QP is negative: a block with no
    stream behind it (e.g. an item of a batch whose frames were not coded on this grid)."""
    qp = torch.as_tensor(qp)
    return torch.where(qp < 0, torch.inf, qstep(qp.clamp(min=0)))


def _blocks(plane: Tensor) -> Tensor:
    """(..., H, W) -> (..., H/4, W/4, 4, 4): the 4x4 blocks of a plane."""
    h, w = plane.shape[-2:]
    if h % BLOCK or w % BLOCK:
        raise ValueError(f"the plane must be a whole number of 4x4 blocks; got {w}x{h}")
    x = plane.unflatten(-2, (h // BLOCK, BLOCK)).unflatten(-1, (w // BLOCK, BLOCK))
    return x.transpose(-3, -2)  # (..., H/4, 4, W/4, 4) -> (..., H/4, W/4, 4, 4)


def _unblocks(blocks: Tensor) -> Tensor:
    """(..., H/4, W/4, 4, 4) -> (..., H, W): the inverse of ``_blocks``."""
    return blocks.transpose(-3, -2).flatten(-4, -3).flatten(-2, -1)


def block_transform(plane: Tensor) -> Tensor:
    """Each 4x4 block X of ``plane`` (..., H, W) -> its coefficients T X Tᵀ, (..., H/4, W/4,
    4, 4); differentiable."""
    t = transform_matrix(plane.dtype, plane.device)
    return t @ _blocks(plane) @ t.T


def inverse_block_transform(coeffs: Tensor) -> Tensor:
    """Coefficients (..., H/4, W/4, 4, 4) -> the plane (..., H, W): Tᵀ C T per block."""
    t = transform_matrix(coeffs.dtype, coeffs.device)
    return _unblocks(t.T @ coeffs @ t)


def luma(rgb: Tensor, spec: ColourSpec = DEFAULT_SPEC) -> Tensor:
    """RGB (..., 3, H, W) in [0, 1] -> Y' (..., H, W) in 8-bit sample units (16-235 for limited
    range), by ``spec``'s matrix, unrounded."""
    kr, kb = MATRICES[spec.matrix]
    offset, scale, _ = _scales(spec)
    r, g, b = rgb.unbind(-3)
    return offset + scale * (kr * r + (1.0 - kr - kb) * g + kb * b)


def luma_scale(spec: ColourSpec = DEFAULT_SPEC) -> float:
    """How many 8-bit Y' levels adding 1 to each of R, G and B (in [0, 1]) moves Y'."""
    return _scales(spec)[1]


def block_q(q: Tensor, height: int, width: int) -> Tensor:
    """Q per 4x4 block (..., H/4, W/4) from a map of Q per 4x4 block or per 16x16 macroblock
    (..., H/16, W/16), told apart by its shape."""
    hb, wb = height // BLOCK, width // BLOCK
    if tuple(q.shape[-2:]) == (hb, wb):
        return q
    mb = 16 // BLOCK
    if tuple(q.shape[-2:]) == (math.ceil(hb / mb), math.ceil(wb / mb)):
        q = q.repeat_interleave(mb, -2).repeat_interleave(mb, -1)
        return q[..., :hb, :wb]
    raise ValueError(
        f"a Q map for {width}x{height} frames has one value per 4x4 block {(hb, wb)} or per "
        f"macroblock; got {tuple(q.shape[-2:])}"
    )


def project_luma(estimate: Tensor, decoded: Tensor, q: Tensor, kappa: float = 0.5) -> Tensor:
    """Eqs. 7-8 on Y' planes (..., H, W): ``estimate`` with each 4x4 transform coefficient of
    its difference from ``decoded`` clamped to ±κQ; ``q`` per 4x4 block (..., H/4, W/4)."""
    delta = block_transform(estimate - decoded)
    bound = (kappa * q).to(delta.dtype)[..., None, None]
    clamped = torch.maximum(torch.minimum(delta, bound), -bound)  # eq. 7, about Ê^dct
    return decoded + inverse_block_transform(clamped)  # eq. 8, with P + Ê = Y


def project(
    estimate: Tensor,
    decoded: Tensor,
    q: Tensor,
    kappa: float = 0.5,
    spec: ColourSpec = DEFAULT_SPEC,
    decoded_luma: Tensor | None = None,
) -> Tensor:
    """The CPM: RGB ``estimate`` (B, 3, H, W) in [0, 1] moved so that the 4x4 coefficients of
    its Y' lie within ±κQ of the decoded frame's; ``decoded`` RGB (B, 3, H, W) gives that Y'
    unless ``decoded_luma`` (B, H, W), the stream's own Y' plane in 8-bit units, is given.
    ``q`` (B, H/4, W/4) or (B, H/16, W/16): the quantiser step, in 8-bit units. The change is
    added equally to R, G and B, so chroma is the estimate's (module docstring)."""
    h, w = estimate.shape[-2:]
    y_est = luma(estimate, spec)
    y_dec = luma(decoded, spec) if decoded_luma is None else decoded_luma.to(y_est.dtype)
    y_proj = project_luma(y_est, y_dec, block_q(q, h, w), kappa)
    return estimate + ((y_proj - y_est) / luma_scale(spec)).unsqueeze(-3)
