"""Felzenszwalb's HOG (FHOG; Felzenszwalb et al., "Object Detection with Discriminatively
Trained Part-Based Models", PAMI 2010, §6), the 31-channel cell features dlib's detector uses,
in torch: RGB frames (B, 3, H, W) in [0, 1] -> (B, 31, H/cell, W/cell).

Neither dlib's Python API nor OpenCV exposes these (OpenCV's HOGDescriptor is Dalal-Triggs'
36-D block descriptor), so this follows ``features.cc`` of the authors' voc-release code:

1. Pixel gradients by central differences [-1, 0, 1] (rows increase downwards) on each colour
   channel of the image scaled to [0, 255]; each pixel keeps the channel of largest magnitude.
2. Orientation snapped to one of 18 contrast-sensitive bins (20° apart: the largest of
   ±(cos θ_o dx + sin θ_o dy), o = 0..8; the minus sign gives bin o + 9); ties go to the first
   bin the reference loop visits (o ascending, + before −).
3. The magnitude votes into the four nearest cells, bilinearly in the cell centres' positions
   (pixel x lies at (x + ½)/cell − ½ in cell units).
4. Each cell's energy is Σ_{o<9} (h_o + h_{o+9})²; a cell is normalised by each of the four 2x2
   blocks of cells it belongs to: N_δ = (energy sum of the block + 10⁻⁴)^(-1/2).
5. Features of a cell: 18 contrast-sensitive ½ Σ_δ min(h_o N_δ, 0.2); 9 contrast-insensitive
   ½ Σ_δ min((h_o + h_{o+9}) N_δ, 0.2); 4 texture energies 0.2357 Σ_{o<18} min(h_o N_δ, 0.2),
   one per block δ.

Readings where this departs from voc-release's grid:
- Every cell is kept (voc-release drops the border ring, giving (H/cell − 2) cells): the paper
  and the design brief want F_HOG at exactly H/4 x W/4 (64² at 256, 56² at 224). Cells beyond
  the image have no energy, so a border cell is normalised by blocks partly outside the image.
- The cells cover the top-left ``floor(H/cell) * cell`` rows and columns; the one-pixel image
  border has no gradient (as in voc-release, whose loop skips it).
- voc-release's 32nd, all-zero "truncation" channel is left out (the 31 of dlib and the paper).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

N_FHOG = 31
CELL = 4
_CLIP = 0.2  # the truncation of normalised histogram values
_TEXTURE = 0.2357  # voc-release's weight of the texture energies (≈ 1/√18)
_EPS = 1e-4  # voc-release's regulariser of the block norms


def _orientation_axes(dtype: torch.dtype, device: torch.device) -> tuple[Tensor, Tensor]:
    """(cos θ_o, sin θ_o) of the 9 contrast-insensitive orientations θ_o = 20° o."""
    theta = torch.arange(9, dtype=torch.float64) * (math.pi / 9)
    return theta.cos().to(dtype=dtype, device=device), theta.sin().to(dtype=dtype, device=device)


def _vote_weights(n_pixels: int, n_cells: int, cell: int, dtype: torch.dtype) -> Tensor:
    """(n_pixels, n_cells) bilinear weights of each pixel to each cell along one axis."""
    pos = (torch.arange(n_pixels, dtype=torch.float64) + 0.5) / cell - 0.5
    w = (1 - (pos[:, None] - torch.arange(n_cells, dtype=torch.float64)).abs()).clamp_min(0)
    return w.to(dtype)


def cell_histograms(frames: Tensor, cell: int = CELL) -> Tensor:
    """Steps 1-3: the 18-bin oriented-gradient histogram of each cell, (B, 18, H/cell, W/cell),
    of RGB (or grey) frames (B, C, H, W) in [0, 1]."""
    b, _, h, w = frames.shape
    rows, cols = h // cell, w // cell
    if rows < 1 or cols < 1:
        raise ValueError(f"FHOG needs frames of at least {cell}x{cell} pixels; got {w}x{h}")
    img = frames[..., : rows * cell, : cols * cell].float() * 255
    dx = torch.zeros_like(img)
    dy = torch.zeros_like(img)
    dx[..., 1:-1, 1:-1] = img[..., 1:-1, 2:] - img[..., 1:-1, :-2]
    dy[..., 1:-1, 1:-1] = img[..., 2:, 1:-1] - img[..., :-2, 1:-1]
    mag2 = dx * dx + dy * dy
    best = mag2.argmax(1, keepdim=True)  # the channel of largest gradient (first on ties)
    dx, dy, mag2 = (t.gather(1, best)[:, 0] for t in (dx, dy, mag2))
    cos, sin = _orientation_axes(dx.dtype, dx.device)
    dots = cos[:, None, None, None] * dx + sin[:, None, None, None] * dy  # (9, B, h, w)
    # The reference loop's visiting order: +dot_0, -dot_0, +dot_1, -dot_1, ...
    candidates = torch.stack((dots, -dots), 1).flatten(0, 1)  # (18, B, h, w)
    k = candidates.argmax(0)
    bins = torch.where(k % 2 == 0, k // 2, k // 2 + 9)  # -dot_o is bin o + 9
    votes = torch.zeros(b, 18, *bins.shape[1:], dtype=dx.dtype, device=dx.device)
    votes.scatter_(1, bins[:, None], mag2.sqrt()[:, None])
    wy = _vote_weights(rows * cell, rows, cell, votes.dtype).to(votes.device)
    wx = _vote_weights(cols * cell, cols, cell, votes.dtype).to(votes.device)
    return torch.einsum("bohw,hi,wj->boij", votes, wy, wx)


@torch.no_grad()
def fhog(frames: Tensor, cell: int = CELL) -> Tensor:
    """FHOG features (B, 31, H/cell, W/cell) of frames (B, C, H, W) in [0, 1] (module
    docstring): 18 contrast-sensitive, 9 contrast-insensitive orientations, 4 texture energies.
    Not differentiable (a fixed transform of the input)."""
    hist = cell_histograms(frames, cell)
    unsigned = hist[:, :9] + hist[:, 9:]
    energy = unsigned.pow(2).sum(1)  # (B, rows, cols)
    # Block sums over every 2x2 window of cells, cells outside the image counting zero:
    # block (a, b) of the padded grid covers cells a-1..a, b-1..b.
    padded = torch.nn.functional.pad(energy, (1, 1, 1, 1))
    blocks = padded[:, :-1, :-1] + padded[:, 1:, :-1] + padded[:, :-1, 1:] + padded[:, 1:, 1:]
    inv = (blocks + _EPS).rsqrt()
    # Each cell's four blocks: below-right, above-right, below-left, above-left (voc's n1..n4).
    norms = torch.stack(
        (inv[:, 1:, 1:], inv[:, :-1, 1:], inv[:, 1:, :-1], inv[:, :-1, :-1]), 1
    )  # (B, 4, rows, cols)
    signed = (hist[:, :, None] * norms[:, None]).clamp_max(_CLIP)  # (B, 18, 4, rows, cols)
    insensitive = (unsigned[:, :, None] * norms[:, None]).clamp_max(_CLIP)
    return torch.cat(
        (0.5 * signed.sum(2), 0.5 * insensitive.sum(2), _TEXTURE * signed.sum(1)), 1
    ).to(frames.dtype)
