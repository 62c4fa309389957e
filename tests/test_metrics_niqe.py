"""NIQE on a real frame (clean < blurred, clean < noisy), MATLAB imresize, the parameter file."""

from __future__ import annotations

import math
from pathlib import Path

import cv2
import numpy as np
import pytest

from avrestore.errors import InputError
from avrestore.media.video import read_frames
from avrestore.metrics.imresize import imresize, resize_matrix
from avrestore.metrics.niqe import NiqeParams, niqe, niqe_applicable


@pytest.fixture(scope="module")
def params(niqe_params_path: Path) -> NiqeParams:
    """The standard pristine model, kept beside the sample clips."""
    return NiqeParams.load(niqe_params_path)


def test_niqe_ranks_degraded_frames_worse(talking_heads: Path, params: NiqeParams) -> None:
    frames, _ = read_frames(talking_heads / "hdtf_RD_Radio2_000.mp4", max_frames=1)
    clean = frames[0].astype(np.float64) / 255
    blurred = cv2.GaussianBlur(clean, (0, 0), 2.0)
    noisy = np.clip(clean + np.random.default_rng(0).normal(0, 0.05, clean.shape), 0, 1)
    score = niqe(clean, params)
    assert 2 < score < 8  # natural frames score in the single digits
    assert niqe(blurred, params) > score + 1
    assert niqe(noisy, params) > score + 1


def test_niqe_needs_two_blocks(params: NiqeParams) -> None:
    assert not niqe_applicable(128, 128)
    assert niqe_applicable(96, 192)
    assert not niqe_applicable(200, 200, crop_border=10)
    with pytest.raises(ValueError, match="two 96x96 blocks"):
        niqe(np.zeros((128, 128, 3)), params)
    assert math.isnan(niqe(np.full((192, 192, 3), 0.5), params))  # flat: no statistics


def test_imresize_halves_a_ramp_exactly_inside() -> None:
    """Keys' cubic reproduces linear signals: away from the mirrored edges, output pixel k of a
    ramp f(j) = j sits at input coordinate 2k + 0.5 (MATLAB's pixel-centre convention)."""
    ramp = np.tile(np.arange(40, dtype=np.float64), (8, 1))
    out = imresize(ramp, 0.5)
    assert out.shape == (4, 20)
    np.testing.assert_allclose(out[:, 3:-3], np.tile(2 * np.arange(3, 17) + 0.5, (4, 1)))


def test_imresize_rows_sum_to_one_and_sizes_round_up() -> None:
    m = resize_matrix(97, 49, 0.5)
    np.testing.assert_allclose(m.sum(axis=1), 1.0)
    assert imresize(np.ones((97, 33)), 0.5).shape == (49, 17)
    np.testing.assert_allclose(imresize(np.full((10, 12), 7.0), 0.5), 7.0)


def test_bad_parameter_file(tmp_path: Path) -> None:
    bad = tmp_path / "p.npz"
    np.savez(bad, mu_pris_param=np.zeros(5))
    with pytest.raises(InputError, match="not a NIQE parameter file"):
        NiqeParams.load(bad)
    with pytest.raises(InputError, match="no such file"):
        NiqeParams.load(tmp_path / "missing.npz")
    empty = tmp_path / "empty.npz"
    empty.touch()  # numpy raises EOFError, which the CLI would turn into a bare "Aborted."
    with pytest.raises(InputError, match="not a NIQE parameter file"):
        NiqeParams.load(empty)
