"""Full-reference fidelity: SSIM / MS-SSIM against known values and pytorch_msssim, the Y
channel, and the fidelity part of the clip scorer."""

from __future__ import annotations

import math

import numpy as np
import pytest
import pytorch_msssim
import torch

from avrestore.metrics.clip import fidelity
from avrestore.metrics.color import y_channel
from avrestore.metrics.ssim import ms_ssim, ms_ssim_scales, ssim


def _nchw(images: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(images).permute(0, 3, 1, 2)


@pytest.fixture(scope="module")
def pair() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    clean = rng.random((1, 165, 172, 3))
    return clean, np.clip(clean + 0.1 * rng.standard_normal(clean.shape), 0, 1)


def test_identical_images_score_one() -> None:
    img = np.random.default_rng(1).random((64, 80, 3))
    assert ssim(img, img) == pytest.approx(1.0, abs=1e-12)
    assert ms_ssim(img, img) == pytest.approx(1.0, abs=1e-12)


def test_ssim_matches_pytorch_msssim(pair) -> None:
    a, b = pair
    expected = float(pytorch_msssim.ssim(_nchw(a), _nchw(b), data_range=1.0))
    assert ssim(a, b) == pytest.approx(expected, abs=1e-6)


def test_five_scale_ms_ssim_matches_pytorch_msssim(pair) -> None:
    a, b = pair
    assert ms_ssim_scales(*a.shape[1:3]) == 5
    expected = float(pytorch_msssim.ms_ssim(_nchw(a), _nchw(b), data_range=1.0))
    assert ms_ssim(a, b) == pytest.approx(expected, abs=1e-5)


@pytest.mark.parametrize(
    ("side", "scales"), [(11, 1), (21, 2), (41, 3), (81, 4), (112, 4), (160, 4), (161, 5)]
)
def test_scales_that_fit(side: int, scales: int) -> None:
    assert ms_ssim_scales(side, side + 7) == scales


def test_fewer_scales_renormalise_the_weights(pair) -> None:
    a, b = pair
    w4 = [0.0448, 0.2856, 0.3001, 0.2363]
    w4 = [w / sum(w4) for w in w4]
    expected = float(pytorch_msssim.ms_ssim(_nchw(a), _nchw(b), data_range=1.0, weights=w4))
    assert ms_ssim(a, b, scales=4) == pytest.approx(expected, abs=1e-5)
    crop, noisy = a[0, :112, :112], b[0, :112, :112]
    assert ms_ssim(crop, noisy) == ms_ssim(crop, noisy, scales=4)
    with pytest.raises(ValueError, match="support 1 to 4"):
        ms_ssim(crop, noisy, scales=5)


def test_ssim_rejects_mismatched_or_tiny_images() -> None:
    with pytest.raises(ValueError, match="shape"):
        ssim(np.zeros((20, 20, 3)), np.zeros((20, 21, 3)))
    with pytest.raises(ValueError, match="at least"):
        ssim(np.zeros((8, 8, 3)), np.zeros((8, 8, 3)))


def test_y_channel_is_matlab_bt601() -> None:
    rgb = np.array([[[0.0, 0.0, 0.0], [1.0, 1.0, 1.0], [1.0, 0.0, 0.0]]])
    y = y_channel(rgb)[..., 0] * 255
    np.testing.assert_allclose(y, [[16.0, 235.0, 16.0 + 65.481]])


def test_clip_fidelity_known_mse() -> None:
    """A uniform error of 5 grey levels: PSNR = 10 log10(255² / 25) on RGB and on Y."""
    hq = np.full((2, 48, 48, 3), 100, np.uint8)
    restored = hq + np.uint8(5)
    values = fidelity(restored, hq)
    expected = 10 * math.log10(255**2 / 25)
    assert values["psnr"] == pytest.approx(expected)
    # Y scales a uniform RGB offset by (65.481 + 128.553 + 24.966) / 255 = 219 / 255.
    assert values["psnr_y"] == pytest.approx(10 * math.log10(255**2 / (5 * 219 / 255) ** 2))
    assert values["ssim"] == pytest.approx(
        (2 * 100 * 105 / 255**2 + 0.01**2) / ((100**2 + 105**2) / 255**2 + 0.01**2)
    )
    same = fidelity(hq, hq)
    assert same["psnr"] == math.inf and same["ssim"] == pytest.approx(1.0)
