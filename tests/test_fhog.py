"""FHOG: a hand-computed cell, orientation bins of known gradients, voc-release's loops on a
random image, and the output's shape and range."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from avrestore.models.fhog import N_FHOG, cell_histograms, fhog

pytestmark = pytest.mark.usefixtures("one_thread")


def _grey(img: np.ndarray) -> torch.Tensor:
    """(H, W) grey levels in [0, 255] as a (1, 3, H, W) frame in [0, 1]."""
    return torch.from_numpy(img / 255.0).float().expand(1, 3, *img.shape).contiguous()


def test_a_horizontal_ramp_puts_a_hand_computed_cell_in_one_bin() -> None:
    # Grey level = column index on a 12x12 image, 3x3 cells of 4: every interior pixel has
    # dx = 2, dy = 0, so orientation 0 (cos 0 · dx is the largest dot) and magnitude 2.
    img = np.tile(np.arange(12.0), (12, 1))
    hist = cell_histograms(_grey(img))[0]
    # Pixel x votes into cell c with weight max(0, 1 - |(x + ½)/4 - ½ - c|). Over the interior
    # pixels 1..10: 4 for the centre cell, 2.875 for a border cell (0.875 + 0.875 + 0.625 +
    # 0.375 + 0.125), in each direction.
    w = torch.tensor([2.875, 4.0, 2.875])
    assert torch.allclose(hist[0], 2 * w[:, None] * w[None, :])
    assert hist[1:].abs().max() == 0
    feat = fhog(_grey(img))[0, :, 1, 1]
    # Centre cell: h = 32; each of its four blocks holds 32² + 23² + 23² + 16.53125², so
    # h·N = 32 / 48.5 > 0.2 and every normalised value is clipped at 0.2.
    expected = torch.zeros(N_FHOG)
    expected[0] = expected[18] = 0.5 * 4 * 0.2  # contrast-sensitive and -insensitive bin 0
    expected[27:] = 0.2357 * 0.2  # texture: one clipped value per block
    assert torch.allclose(feat, expected, atol=1e-6)


@pytest.mark.parametrize(("degrees", "sensitive"), [(0, 0), (60, 3), (180, 9), (240, 12)])
def test_a_ramp_along_an_orientation_lands_in_its_bin(degrees: int, sensitive: int) -> None:
    t = math.radians(degrees)
    y, x = np.mgrid[0:16, 0:16].astype(np.float64)
    img = 100 + 3 * (np.cos(t) * x + np.sin(t) * y)  # rows grow downwards, as dy does
    feat = fhog(_grey(img))[0, :, 1:-1, 1:-1]  # interior cells
    assert feat[:18].argmax(0).unique().tolist() == [sensitive]
    assert feat[18:27].argmax(0).unique().tolist() == [sensitive % 9]
    others = [o for o in range(18) if o != sensitive]
    assert feat[others].abs().max() < 1e-6


def _voc_release(im: np.ndarray, sbin: int) -> np.ndarray:
    """A transcription of voc-release5's features.cc (rows y, columns x, im (H, W, 3) in
    [0, 255]): (H/sbin - 2, W/sbin - 2, 31) without its all-zero 32nd channel."""
    uu = [1.0000, 0.9397, 0.7660, 0.5000, 0.1736, -0.1736, -0.5000, -0.7660, -0.9397]
    vv = [0.0000, 0.3420, 0.6428, 0.8660, 0.9848, 0.9848, 0.8660, 0.6428, 0.3420]
    rows, cols = round(im.shape[0] / sbin), round(im.shape[1] / sbin)
    hist = np.zeros((rows, cols, 18))
    for x in range(1, cols * sbin - 1):
        for y in range(1, rows * sbin - 1):
            best_v, dx, dy = -1.0, 0.0, 0.0
            for c in range(3):
                gx = im[y, x + 1, c] - im[y, x - 1, c]
                gy = im[y + 1, x, c] - im[y - 1, x, c]
                if gx * gx + gy * gy > best_v:
                    best_v, dx, dy = gx * gx + gy * gy, gx, gy
            best_dot, best_o = 0.0, 0
            for o in range(9):
                dot = uu[o] * dx + vv[o] * dy
                if dot > best_dot:
                    best_dot, best_o = dot, o
                elif -dot > best_dot:
                    best_dot, best_o = -dot, o + 9
            xp, yp = (x + 0.5) / sbin - 0.5, (y + 0.5) / sbin - 0.5
            ixp, iyp = math.floor(xp), math.floor(yp)
            vx0, vy0 = xp - ixp, yp - iyp
            v = math.sqrt(best_v)
            for cy, wy in ((iyp, 1 - vy0), (iyp + 1, vy0)):
                for cx, wx in ((ixp, 1 - vx0), (ixp + 1, vx0)):
                    if 0 <= cy < rows and 0 <= cx < cols:
                        hist[cy, cx, best_o] += wx * wy * v
    norm = ((hist[..., :9] + hist[..., 9:]) ** 2).sum(-1)
    out = np.zeros((rows - 2, cols - 2, 31))
    for y in range(rows - 2):
        for x in range(cols - 2):
            ns = []
            for r0, c0 in ((y + 1, x + 1), (y, x + 1), (y + 1, x), (y, x)):
                ns.append(1 / math.sqrt(norm[r0 : r0 + 2, c0 : c0 + 2].sum() + 1e-4))
            h = hist[y + 1, x + 1]
            clipped = np.minimum(h[:, None] * np.array(ns), 0.2)  # (18, 4)
            out[y, x, :18] = 0.5 * clipped.sum(1)
            folded = np.minimum((h[:9] + h[9:])[:, None] * np.array(ns), 0.2)
            out[y, x, 18:27] = 0.5 * folded.sum(1)
            out[y, x, 27:] = 0.2357 * clipped.sum(0)
    return out


def test_interior_cells_match_voc_release_on_a_random_colour_image() -> None:
    rng = np.random.default_rng(0)
    # Smooth-ish random colours, so that the normalisation is not always clipped.
    im = rng.uniform(0, 255, (5, 6, 3)).repeat(4, 0).repeat(4, 1)[:20, :24]
    im = im + rng.normal(0, 8, im.shape)
    ours = fhog(torch.from_numpy(im / 255).permute(2, 0, 1)[None].float())[0]
    ref = torch.from_numpy(_voc_release(im, 4)).permute(2, 0, 1).float()
    # Most values are unclipped here (the normalisation matters); voc-release's orientation
    # table is rounded to 4 decimals, which moves no pixel of this image to another bin.
    assert ((ref[:18] > 0) & (ref[:18] < 0.39)).float().mean() > 0.5
    assert (ours[:, 1:-1, 1:-1] - ref).abs().max() < 1e-5


def test_shape_range_and_a_flat_image() -> None:
    x = torch.rand(2, 3, 30, 18, generator=torch.Generator().manual_seed(0))
    feat = fhog(x)
    assert feat.shape == (2, N_FHOG, 7, 4) and feat.dtype == torch.float32
    assert feat.min() >= 0
    assert feat[:, :27].max() <= 0.4 + 1e-6  # ½ of four values clipped at 0.2
    assert feat[:, 27:].max() <= 0.2357 * 18 * 0.2 + 1e-6
    assert fhog(torch.full((1, 3, 16, 16), 0.5)).abs().max() == 0
    with pytest.raises(ValueError, match="at least 4x4"):
        fhog(torch.rand(1, 3, 3, 8))
