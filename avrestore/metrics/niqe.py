"""NIQE (Mittal, Soundararajan & Bovik 2013, "Making a completely blind image quality analyzer").

The standard algorithm as in the authors' MATLAB release and BasicSR: MATLAB-YCbCr Y channel
in [0, 255] rounded to integers, cropped to whole 96×96 blocks; at two scales (the second by
MATLAB bicubic ×0.5 with anti-aliasing, :mod:`avrestore.metrics.imresize`) the MSCN
coefficients (7×7 Gaussian window from the parameter file, replicate borders) of each block
give 18 features — an asymmetric generalised Gaussian (AGGD) fit of the coefficients and of
their products with the four neighbours (circular shifts within the block); a multivariate
Gaussian fitted to the blocks' 36 features is compared with the pristine model (Eq. 10).
Lower is better. The pristine parameters are read from a user-given ``.npz`` (keys
``mu_pris_param``, ``cov_pris_param``, ``gaussian_window``).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np
from scipy.ndimage import convolve
from scipy.special import gamma

from avrestore.errors import InputError
from avrestore.media.files import existing_file
from avrestore.metrics.color import Y_OFFSET, Y_WEIGHTS
from avrestore.metrics.imresize import imresize

BLOCK = 96

# The AGGD shape is found by table look-up over α ∈ [0.2, 10] in steps of 0.001, as in MATLAB.
_ALPHAS = np.arange(0.2, 10.001, 0.001)
_RHO = gamma(2 / _ALPHAS) ** 2 / (gamma(1 / _ALPHAS) * gamma(3 / _ALPHAS))


@dataclass(frozen=True)
class NiqeParams:
    """The pristine multivariate Gaussian (mean (36,), covariance (36, 36)) and MSCN window."""

    mu: np.ndarray
    cov: np.ndarray
    window: np.ndarray

    @classmethod
    def load(cls, path: str | os.PathLike) -> NiqeParams:
        """Read ``niqe_pris_params.npz``; InputError if it lacks the expected arrays."""
        p = existing_file(path)
        try:
            with np.load(p) as data:
                mu = data["mu_pris_param"].reshape(-1)
                cov = data["cov_pris_param"]
                window = data["gaussian_window"]
        except (OSError, ValueError, KeyError, EOFError) as e:  # EOFError: an empty file
            raise InputError(f"not a NIQE parameter file: {p} ({e})") from None
        if mu.shape != (36,) or cov.shape != (36, 36) or window.ndim != 2:
            raise InputError(f"not a NIQE parameter file: {p} (unexpected array shapes)")
        return cls(mu.astype(np.float64), cov.astype(np.float64), window.astype(np.float64))


def niqe_applicable(height: int, width: int, crop_border: int = 0) -> bool:
    """True when the image holds at least two 96×96 blocks (one block has no covariance)."""
    h, w = height - 2 * crop_border, width - 2 * crop_border
    return (h // BLOCK) * (w // BLOCK) >= 2


def _rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(x**2))) if x.size else np.nan


def _aggd(x: np.ndarray) -> tuple[float, float, float]:
    """AGGD fit by moment matching: shape α, left scale β_l, right scale β_r (Eq. 7).

    A flat block (no negative or no positive coefficients) gives NaN scales, and its block is
    then left out of the covariance, as in MATLAB.
    """
    x = x.ravel()
    left, right = _rms(x[x < 0]), _rms(x[x > 0])
    with np.errstate(divide="ignore", invalid="ignore"):
        g = left / right
        r = np.mean(np.abs(x)) ** 2 / np.mean(x**2)
    r_norm = r * (g**3 + 1) * (g + 1) / (g**2 + 1) ** 2
    alpha = _ALPHAS[np.argmin((_RHO - r_norm) ** 2)]
    spread = np.sqrt(gamma(1 / alpha) / gamma(3 / alpha))
    return alpha, left * spread, right * spread


def _block_features(mscn: np.ndarray) -> list[float]:
    """The 18 features of one block: AGGD of the coefficients and of 4 neighbour products."""
    alpha, beta_l, beta_r = _aggd(mscn)
    feats = [alpha, (beta_l + beta_r) / 2]
    for shift in ((0, 1), (1, 0), (1, 1), (1, -1)):
        alpha, beta_l, beta_r = _aggd(mscn * np.roll(mscn, shift, axis=(0, 1)))
        mean = (beta_r - beta_l) * gamma(2 / alpha) / gamma(1 / alpha)  # Eq. 8
        feats += [alpha, mean, beta_l, beta_r]
    return feats


def _mscn(y: np.ndarray, window: np.ndarray) -> np.ndarray:
    """Mean-subtracted contrast-normalised coefficients (Eq. 1)."""
    mu = convolve(y, window, mode="nearest")
    sigma = np.sqrt(np.abs(convolve(y * y, window, mode="nearest") - mu * mu))
    return (y - mu) / (sigma + 1)


def niqe_y(y: np.ndarray, params: NiqeParams) -> float:
    """NIQE of a Y image (H, W) in [0, 255]; NaN when fewer than two blocks have texture."""
    rows, cols = y.shape[0] // BLOCK, y.shape[1] // BLOCK
    if rows * cols < 2:
        raise ValueError(f"NIQE needs at least two {BLOCK}x{BLOCK} blocks, got {y.shape}")
    y = np.asarray(y, dtype=np.float64)[: rows * BLOCK, : cols * BLOCK]
    scales = []
    for scale in (1, 2):
        mscn = _mscn(y, params.window)
        b = BLOCK // scale
        scales.append(
            [
                _block_features(mscn[i * b : (i + 1) * b, j * b : (j + 1) * b])
                for i in range(rows)
                for j in range(cols)
            ]
        )
        if scale == 1:
            y = imresize(y / 255.0, 0.5) * 255.0
    feats = np.concatenate([np.asarray(s) for s in scales], axis=1)
    complete = feats[~np.isnan(feats).any(axis=1)]
    if len(complete) < 2:  # a (nearly) flat image has no natural-scene statistics
        return float("nan")
    mu = np.nanmean(feats, axis=0)
    cov = np.cov(complete, rowvar=False)
    diff = params.mu - mu
    return float(np.sqrt(diff @ np.linalg.pinv((params.cov + cov) / 2) @ diff))  # Eq. 10


def niqe(image: np.ndarray, params: NiqeParams, crop_border: int = 0) -> float:
    """NIQE of an RGB image (H, W, 3) in [0, 1]: its rounded MATLAB Y channel, borders cropped."""
    y = np.asarray(image, dtype=np.float64) @ Y_WEIGHTS + Y_OFFSET  # [16, 235]
    if crop_border:
        y = y[crop_border:-crop_border, crop_border:-crop_border]
    # MATLAB reads 8-bit images: rounding Y keeps the result consistent with its release.
    return niqe_y(np.round(y), params)
