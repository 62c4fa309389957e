"""The VQ codebook: nearest code, straight-through gradient, commitment, EMA updates, dead-code
restart, k-means initialisation, perplexity."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from avrestore.models.vector_quantizer import VectorQuantizer, kmeans, perplexity

pytestmark = pytest.mark.usefixtures("one_thread")


def _vq(codebook: torch.Tensor, **kwargs: object) -> VectorQuantizer:
    """A quantiser with the given codes, initialised (no k-means collection)."""
    vq = VectorQuantizer(len(codebook), codebook.shape[1], **kwargs)
    vq.init_kmeans(codebook)  # k-means of K vectors with K codes: the vectors themselves
    assert torch.equal(vq.codebook.sort(0).values, codebook.sort(0).values)
    vq.codebook.copy_(codebook)  # in the given order
    vq.ema_sum.copy_(codebook)
    return vq


def _as_map(rows: torch.Tensor) -> torch.Tensor:
    """(N, d) vectors as a (1, d, 1, N) latent map."""
    return rows.t()[None, :, None, :].contiguous()


def test_each_vector_takes_its_exact_nearest_code() -> None:
    g = torch.Generator().manual_seed(0)
    codebook = torch.randn(16, 4, generator=g)
    vq = _vq(codebook).eval()
    z = torch.randn(2, 4, 5, 6, generator=g)
    got = vq(z).codes
    rows = z.permute(0, 2, 3, 1).reshape(-1, 4)
    brute = torch.cdist(rows.double(), codebook.double()).argmin(1).view(2, 5, 6)
    assert torch.equal(got, brute)
    # A code slightly perturbed still maps to itself, and z_q is the code's vector.
    q = vq(_as_map(codebook + 1e-3))
    assert torch.equal(q.codes.flatten(), torch.arange(16))
    assert torch.allclose(q.z_q[0, :, 0].t(), codebook)


def test_bf16_autocast_picks_the_float32_nearest_code() -> None:
    # Off the origin, close codes: ‖z‖² and 2z·e are large and nearly cancel, so a bf16
    # product (3 significant digits) would pick the wrong code for ~half the rows (measured).
    g = torch.Generator().manual_seed(2)
    codebook = 3 + 0.3 * torch.randn(64, 16, generator=g)
    vq = _vq(codebook).eval()
    z = 3 + 0.3 * torch.randn(3, 16, 4, 4, generator=g)
    rows = z.permute(0, 2, 3, 1).reshape(-1, 16)
    brute = torch.cdist(rows.double(), codebook.double()).argmin(1).view(3, 4, 4)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert torch.equal(vq(z).codes, brute)


def test_the_gradient_passes_straight_through_to_the_encoder_output() -> None:
    g = torch.Generator().manual_seed(1)
    vq = _vq(torch.randn(8, 3, generator=g)).eval()
    z = torch.randn(2, 3, 4, 4, generator=g, requires_grad=True)
    q = vq(z)
    upstream = torch.randn(q.z_q.shape, generator=g)
    (q.z_q * upstream).sum().backward()
    assert torch.equal(z.grad, upstream)  # ∂L/∂z_e = ∂L/∂z_q exactly
    e = vq.embed(q.codes)
    assert torch.allclose(q.z_q, e)  # the forward value is the code
    assert torch.allclose(q.commitment, 0.25 * F.mse_loss(z, e))


def test_ema_moves_a_code_toward_the_vectors_assigned_to_it() -> None:
    vq = _vq(torch.tensor([[0.0, 0.0], [10.0, 10.0]]), decay=0.9, restart_every=0).train()
    vq(_as_map(torch.ones(4, 2)))  # four vectors at (1, 1), all nearest code 0
    # N_0 = 0.9 * 1 + 0.1 * 4 = 1.3, m_0 = 0.9 * (0, 0) + 0.1 * (4, 4): e_0 = 0.4 / 1.3.
    assert torch.allclose(vq.codebook[0], torch.full((2,), 0.4 / 1.3), atol=1e-4)
    assert torch.allclose(vq.codebook[1], torch.full((2,), 10.0), atol=1e-3)  # unused, kept
    for _ in range(200):
        vq(_as_map(torch.ones(4, 2)))
    assert torch.allclose(vq.codebook[0], torch.ones(2), atol=1e-3)


def test_codes_never_chosen_are_restarted_on_encoder_vectors() -> None:
    codebook = torch.tensor([[0.0, 0.0], [100.0, 100.0], [200.0, 200.0], [300.0, 300.0]])
    vq = _vq(codebook, restart_every=2, dead_below=1.0).train()
    z = torch.randn(16, 2, generator=torch.Generator().manual_seed(2)) * 0.1
    vq(_as_map(z))
    assert torch.allclose(vq.codebook[1:], codebook[1:], rtol=1e-4)  # unused, not yet due
    vq(_as_map(z))
    for k in (1, 2, 3):  # each dead code now sits on one of the batch's vectors
        assert (vq.codebook[k] - z).norm(dim=1).min() < 1e-6
    assert vq.usage_count.sum() == 0 and torch.all(vq.ema_count[1:] == 1)


def test_perplexity_of_a_uniform_assignment_is_the_codebook_size() -> None:
    assert perplexity(torch.arange(8).repeat(5), 8).item() == pytest.approx(8.0)
    assert perplexity(torch.zeros(40, dtype=torch.long), 8).item() == pytest.approx(1.0)
    codebook = torch.randn(8, 3, generator=torch.Generator().manual_seed(3))
    q = _vq(codebook).eval()(_as_map(codebook.repeat(3, 1)))
    assert q.perplexity.item() == pytest.approx(8.0) and q.usage.item() == 1.0


def test_kmeans_finds_separated_clusters_and_the_codebook_starts_from_them() -> None:
    g = torch.Generator().manual_seed(4)
    means = torch.tensor([[0.0, 0.0], [5.0, 0.0], [0.0, 5.0]])
    x = (means[:, None] + 0.1 * torch.randn(3, 50, 2, generator=g)).flatten(0, 1)
    centres, counts = kmeans(x, 3, generator=g)
    assert torch.cdist(x.view(3, 50, 2).mean(1), centres).min(1).values.max() < 1e-5
    assert counts.tolist() == [50, 50, 50]
    # Uninitialised, a training quantiser is an autoencoder until it has the vectors.
    vq = VectorQuantizer(3, 2, kmeans_vectors=150).train()
    z = _as_map(x[:100])
    q = vq(z)
    assert torch.equal(q.z_q, z) and q.commitment.item() == 0 and not vq.initialised
    vq(_as_map(x[100:]))
    assert vq.initialised
    assert torch.cdist(vq.codebook, centres).min(1).values.max() < 1e-5
