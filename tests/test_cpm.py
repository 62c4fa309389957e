"""DAVD-Net's constraining projection (``avrestore.models.cpm``): H.264's orthonormal 4x4
transform, Qstep, the projection, and the CRF-45 ground truth inside the box on a real clip."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from avrestore.media.colour import DEFAULT_SPEC, ColourSpec, rgb_to_yuv
from avrestore.media.qp import crop_qp, read_qp_maps
from avrestore.media.video import VideoWriter, read_frames
from avrestore.models.cpm import (
    block_q,
    block_transform,
    inverse_block_transform,
    luma,
    project,
    project_luma,
    qstep,
    step_or_unbounded,
    transform_matrix,
)

pytestmark = pytest.mark.usefixtures("one_thread")


def _random_case(seed: int = 0, h: int = 16, w: int = 24) -> tuple[torch.Tensor, ...]:
    """An estimate, a decoded frame (RGB, B = 2) and a Q map of CRF-45-like steps."""
    g = torch.Generator().manual_seed(seed)
    decoded = torch.rand(2, 3, h, w, generator=g, dtype=torch.float64)
    estimate = decoded + 0.3 * torch.randn(2, 3, h, w, generator=g, dtype=torch.float64)
    q = qstep(torch.randint(30, 52, (2, h // 4, w // 4), generator=g)).double()
    return estimate, decoded, q


def _ratio(estimate: torch.Tensor, decoded: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
    """|coefficient of Y'(estimate) − Y'(decoded)| / Q per coefficient."""
    return block_transform(luma(estimate) - luma(decoded)).abs() / q[..., None, None]


def test_the_transform_is_h264s_core_transform_made_orthonormal() -> None:
    t = transform_matrix(torch.float64)
    assert torch.allclose(t @ t.T, torch.eye(4, dtype=torch.float64), atol=1e-15)
    core = torch.tensor([[1, 1, 1, 1], [2, 1, -1, -2], [1, -1, -1, 1], [1, -2, 2, -1]]).double()
    assert torch.allclose(t * torch.tensor([2, 10**0.5, 2, 10**0.5]).double()[:, None], core)
    # Blockwise: the inverse undoes it and energy is kept in each block (Parseval).
    plane = torch.randn(3, 8, 12, dtype=torch.float64)
    coeffs = block_transform(plane)
    assert coeffs.shape == (3, 2, 3, 4, 4)
    assert torch.allclose(inverse_block_transform(coeffs), plane, atol=1e-12)
    assert torch.allclose(
        coeffs[:, 1, 2].square().sum((-1, -2)), plane[:, 4:8, 8:12].square().sum((-1, -2))
    )
    # A flat block has only a DC coefficient, 4 x its value (the orthonormal 2-D DC basis is 1/4).
    flat = block_transform(torch.full((4, 4), 3.0, dtype=torch.float64))
    assert flat[0, 0, 0, 0] == pytest.approx(12.0) and flat.abs().sum() == pytest.approx(12.0)
    with pytest.raises(ValueError, match="4x4 blocks"):
        block_transform(torch.zeros(6, 8))


def test_qstep_doubles_every_six_qp_from_0_625() -> None:
    q = qstep(torch.arange(52))
    assert q[0] == 0.625 and q[4] == 1.0 and q[6] == 1.25 and q[51] == 224.0
    assert torch.allclose(q[6:], 2 * q[:-6])
    assert qstep(torch.tensor([45], dtype=torch.uint8)).item() == 112.0  # not a mask index
    assert step_or_unbounded(torch.tensor([-1, 45])).tolist() == [float("inf"), 112.0]
    for bad in (torch.tensor([52]), torch.tensor([-1]), torch.tensor([40.5])):
        with pytest.raises(ValueError):
            qstep(bad)


def test_a_projected_estimate_lies_in_the_box_in_every_coefficient() -> None:
    estimate, decoded, q = _random_case()
    assert _ratio(estimate, decoded, q).max() > 0.5  # the case needs projecting
    out = project(estimate, decoded, q)
    assert _ratio(out, decoded, q).max() <= 0.5 + 1e-12
    # kappa scales the box.
    assert _ratio(project(estimate, decoded, q, kappa=0.25), decoded, q).max() <= 0.25 + 1e-12


def test_the_projection_keeps_chroma_and_changes_luma_by_a_grey_shift() -> None:
    estimate, decoded, q = _random_case(1)
    out = project(estimate, decoded, q)
    diff = out - estimate
    assert torch.allclose(diff[:, 0], diff[:, 1]) and torch.allclose(diff[:, 0], diff[:, 2])
    # Cb, Cr ∝ B − Y', R − Y': unchanged by adding the same amount to R, G and B.
    y_est, y_out = luma(estimate), luma(out)
    for c in (0, 2):
        assert torch.allclose(out[:, c] * 219 - y_out, estimate[:, c] * 219 - y_est)
    # Full range: the same, with 255 levels per unit.
    full = ColourSpec("bt709", full_range=True)
    out = project(estimate, decoded, q, spec=full)
    assert (
        block_transform(luma(out, full) - luma(decoded, full)).abs() / q[..., None, None]
    ).max() <= 0.5 + 1e-12


def test_the_projection_is_idempotent_and_keeps_an_estimate_in_the_box() -> None:
    estimate, decoded, q = _random_case(2)
    once = project(estimate, decoded, q)
    assert torch.allclose(project(once, decoded, q), once, atol=1e-12)
    # An estimate already in the box (half of the box's corner in every coefficient).
    inside = inverse_block_transform(
        torch.sign(torch.randn(2, 4, 6, 4, 4)).double() * 0.49 * q[..., None, None]
    )
    y_dec = luma(decoded)
    assert torch.allclose(project_luma(y_dec + inside, y_dec, q), y_dec + inside, atol=1e-12)
    in_box = decoded + (inside / 219).unsqueeze(1)
    assert torch.allclose(project(in_box, decoded, q), in_box, atol=1e-12)


def test_the_projection_is_differentiable_and_passes_gradients_inside_the_box() -> None:
    estimate, decoded, q = _random_case(3)
    estimate = (decoded + 1e-4 * (estimate - decoded)).requires_grad_()  # well inside the box
    project(estimate, decoded, q).sum().backward()
    assert torch.allclose(estimate.grad, torch.ones_like(estimate))
    far = (decoded + 5 * (torch.rand_like(decoded) - 0.5)).requires_grad_()
    project(far, decoded, q).square().sum().backward()
    assert torch.isfinite(far.grad).all()


def test_decoded_luma_and_macroblock_q_maps() -> None:
    estimate, decoded, _ = _random_case(4, h=32, w=48)
    q_mb = qstep(torch.randint(30, 52, (2, 2, 3))).double()
    q4 = block_q(q_mb, 32, 48)
    assert q4.shape == (2, 8, 12) and torch.equal(
        q4[:, 4:8, 8:12], q_mb[:, 1:2, 2:3].expand(2, 4, 4)
    )
    a = project(estimate, decoded, q_mb)
    assert torch.equal(a, project(estimate, decoded, q4))
    # The stream's own Y' plane, when given, stands for the decoded frame's.
    assert torch.allclose(project(estimate, decoded, q4, decoded_luma=luma(decoded)), a)
    with pytest.raises(ValueError, match="per 4x4 block"):
        block_q(q_mb[:, :1], 32, 48)


@pytest.fixture(scope="module")
def crf45_clip(talking_heads: Path, tmp_path_factory: pytest.TempPathFactory) -> dict:
    """16 frames of a 224² VoxCeleb2 face, their CRF-45 copy (as ``compress``: libx264 medium,
    yuv420p, BT.601 limited), its decoded Y' planes and RGB frames, and its QP maps."""
    import av

    hq, _ = read_frames(talking_heads / "voxceleb2_Audio_Source_00015.mp4", max_frames=16)
    path = tmp_path_factory.mktemp("crf45") / "crf45.mp4"
    with VideoWriter(path, 25, crf=45, preset="medium") as writer:
        writer.write(hq)
    with av.open(str(path)) as c:
        planes = [
            np.frombuffer(f.planes[0], np.uint8).reshape(f.planes[0].height, f.planes[0].line_size)[
                :, :224
            ]
            for f in c.decode(video=0)
        ]
    return {
        "hq_y": np.stack([rgb_to_yuv(x, DEFAULT_SPEC)[0] for x in hq]),  # what x264 was given
        "decoded_y": np.stack(planes),
        "decoded_rgb": read_frames(path)[0],
        "qp": read_qp_maps(path),
    }


def _inside(truth_y: np.ndarray, decoded_y: torch.Tensor, qp_mb: np.ndarray) -> float:
    q = qstep(torch.from_numpy(crop_qp(qp_mb, 0, 0, 224, 224))).double()
    ratio = (
        block_transform(torch.from_numpy(truth_y).double() - decoded_y).abs() / q[..., None, None]
    )
    return float((ratio <= 0.5).double().mean())


def test_the_crf45_ground_truth_lies_in_the_box_on_a_real_clip(crf45_clip: dict) -> None:
    """Measured on these 16 frames: 98.76 % of coefficients inside with the macroblock QP,
    99.40 % with max(macroblock QP, picture QP); the default x264 makes RD decisions (trellis,
    deadzone, decimation, skip) that break the paper's rounding model on the rest."""
    truth, qp = crf45_clip["hq_y"], crf45_clip["qp"]
    plane = torch.from_numpy(crf45_clip["decoded_y"]).double()
    per_mb = _inside(truth, plane, qp.macroblock)
    bounded = _inside(truth, plane, qp.effective())
    assert per_mb >= 0.985 and bounded >= 0.992 and bounded > per_mb
    # The model's path: Y' of the decoded RGB frames instead of the stream's Y' plane.
    rgb = torch.from_numpy(crf45_clip["decoded_rgb"]).permute(0, 3, 1, 2).double() / 255
    assert _inside(truth, luma(rgb), qp.effective()) >= 0.992
