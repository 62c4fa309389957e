"""The codebook of a VQ autoencoder: nearest code, straight-through gradient, commitment loss,
EMA updates, restart of dead codes, k-means initialisation, usage and perplexity.

Notation (van den Oord et al., "Neural Discrete Representation Learning", 2017, and its EMA
variant in appendix A.1; the TS-VQGAN of PGTFormer uses the same bottleneck):

- the encoder output z_e(x) at each latent position (a d-vector) is replaced by its nearest code
  e_k, k = argmin_j ‖z_e − e_j‖² (eq. 1-2 of VQ-VAE);
- the decoder's gradient is copied straight through to z_e: z_q = z_e + sg[e_k − z_e];
- the commitment loss β‖z_e − sg[e_k]‖² (eq. 3's last term) keeps z_e near its code;
- the codebook term of eq. 3 is replaced by exponential moving averages (decay γ):
  N_k ← γ N_k + (1 − γ) n_k, m_k ← γ m_k + (1 − γ) Σ_{z assigned to k} z, e_k = m_k / N_k
  (N_k Laplace-smoothed so that an unused code never divides by zero).

Beyond the paper (as PGTFormer, CodeFormer and Jukebox do against codebook collapse):

- dead-code restart: every ``restart_every`` updates, each code chosen fewer than
  ``dead_below`` times since the last check is moved onto a random encoder vector of the
  current batch;
- k-means initialisation: an uninitialised codebook in training mode passes z_e through
  unquantised (an autoencoder, zero commitment) while it collects the most recent
  ``kmeans_vectors`` encoder outputs, then runs k-means on them and starts quantising. A run
  therefore warms up as a plain autoencoder first and quantises from codes that already sit
  on the encoder's outputs (``init_kmeans`` does the same from a given set of vectors).

The EMA statistics, the usage counts and the k-means collection are per process: under
DistributedDataParallel each rank would update its own copy (not synchronised here).
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

_KMEANS_CHUNK = 8192  # rows of the distance matrix per chunk (50k x 512 floats in one go: 100 MB)


class Quantized(NamedTuple):
    """What the quantiser returns for z_e (B, d, h, w)."""

    z_q: Tensor  # (B, d, h, w): the codes, with z_e's gradient (straight-through)
    codes: Tensor  # (B, h, w) int64: the index k of each position's code
    commitment: Tensor  # β‖z_e − sg[e_k]‖², mean over positions and channels
    perplexity: Tensor  # exp(entropy) of the batch's code histogram (1 .. K)
    usage: Tensor  # fraction of the K codes used in the batch


def perplexity(codes: Tensor, n_codes: int) -> Tensor:
    """exp(−Σ p_k log p_k) of the histogram p of ``codes``: K for a uniform assignment, 1 when
    every vector takes the same code."""
    p = torch.bincount(codes.flatten(), minlength=n_codes).float()
    p = p / p.sum().clamp_min(1)
    return torch.exp(-(p * torch.log(p.clamp_min(1e-12))).sum())


def nearest_code(z: Tensor, codebook: Tensor) -> Tensor:
    """argmin_k ‖z_n − e_k‖² for rows z (N, d) and codes (K, d), in float32 (ties: lowest k)."""
    z, e = z.float(), codebook.float()
    # Outside autocast: under bf16 the product z·e would be rounded to 3 digits, and the
    # difference of these large terms would pick the wrong code.
    with torch.autocast(z.device.type, enabled=False):
        d = z.pow(2).sum(1, keepdim=True) - 2 * z @ e.t() + e.pow(2).sum(1)
    return d.argmin(1)


def _kmeans_pp(x: Tensor, k: int, generator: torch.Generator | None) -> Tensor:
    """k-means++ seeding (Arthur & Vassilvitskii 2007): each next centre drawn with probability
    proportional to the squared distance to the nearest centre so far."""
    n = len(x)
    centres = [x[int(torch.randint(n, (1,), generator=generator))]]
    nearest = (x - centres[0]).pow(2).sum(1)
    for _ in range(1, k):
        if float(nearest.sum()) > 0:
            i = int(torch.multinomial(nearest, 1, generator=generator))
        else:  # every row already a centre: any row
            i = int(torch.randint(n, (1,), generator=generator))
        centres.append(x[i])
        nearest = torch.minimum(nearest, (x - x[i]).pow(2).sum(1))
    return torch.stack(centres)


def kmeans(
    vectors: Tensor, k: int, iters: int = 20, generator: torch.Generator | None = None
) -> tuple[Tensor, Tensor]:
    """Lloyd's k-means of rows (N, d), N >= k, from k-means++ seeds: centres (k, d) and
    cluster sizes (k,). A cluster left empty is moved onto a random row."""
    x = vectors.detach().float()
    n = len(x)
    if n < k:
        raise ValueError(f"k-means needs at least {k} vectors, got {n}")
    centres = _kmeans_pp(x, k, generator)
    counts = torch.zeros(k, device=x.device)
    for _ in range(iters):
        labels = torch.cat(
            [nearest_code(x[i : i + _KMEANS_CHUNK], centres) for i in range(0, n, _KMEANS_CHUNK)]
        )
        counts = torch.bincount(labels, minlength=k).float()
        sums = torch.zeros_like(centres).index_add_(0, labels, x)
        empty = counts == 0
        centres = torch.where(empty[:, None], centres, sums / counts.clamp_min(1)[:, None])
        if empty.any():
            pick = torch.randint(n, (int(empty.sum()),), generator=generator)
            centres[empty] = x[pick.to(x.device)]
    return centres, counts


class VectorQuantizer(nn.Module):
    """z_e (B, d, h, w) -> nearest of K codes (EMA codebook, dead-code restart, k-means init).

    The codebook and its EMA statistics are buffers, not parameters: no optimiser touches
    them; they change only in training mode, in ``forward``.
    """

    def __init__(
        self,
        n_codes: int = 512,
        dim: int = 64,
        beta: float = 0.25,
        decay: float = 0.99,
        eps: float = 1e-5,
        restart_every: int = 200,
        dead_below: float = 1.0,
        kmeans_vectors: int = 50_000,
        kmeans_iters: int = 20,
    ) -> None:
        super().__init__()
        self.n_codes, self.dim, self.beta = n_codes, dim, beta
        self.decay, self.eps = decay, eps
        self.restart_every, self.dead_below = restart_every, dead_below
        self.kmeans_vectors, self.kmeans_iters = kmeans_vectors, kmeans_iters
        codebook = torch.empty(n_codes, dim).uniform_(-1 / n_codes, 1 / n_codes)  # taming's init
        self.register_buffer("codebook", codebook)
        self.register_buffer("ema_count", torch.ones(n_codes))  # N_k
        self.register_buffer("ema_sum", codebook.clone())  # m_k = N_k e_k
        self.register_buffer("usage_count", torch.zeros(n_codes))  # picks since the last restart
        self.register_buffer("updates", torch.zeros((), dtype=torch.long))
        # 0: collecting encoder vectors for k-means (z_e passes through); 1: quantising.
        self.register_buffer("initialised", torch.zeros((), dtype=torch.long))
        self._collected: list[Tensor] = []  # not saved: a resumed run collects afresh

    @torch.no_grad()
    def init_kmeans(self, vectors: Tensor, generator: torch.Generator | None = None) -> None:
        """Set the codebook to the k-means centres of encoder outputs ``vectors`` (N, d) and
        start quantising. Every code starts with an EMA count of 1 (the EMA then moves it at
        the rate of a fresh code, whatever the size of the k-means sample)."""
        centres, _ = kmeans(
            vectors.reshape(-1, self.dim), self.n_codes, self.kmeans_iters, generator
        )
        self.codebook.copy_(centres)
        self.ema_count.fill_(1.0)
        self.ema_sum.copy_(centres)
        self.usage_count.zero_()
        self.initialised.fill_(1)
        self._collected = []

    def codes(self, z: Tensor) -> Tensor:
        """The index of each position's nearest code, (B, h, w); never updates the codebook."""
        b, d, h, w = z.shape
        return nearest_code(z.permute(0, 2, 3, 1).reshape(-1, d), self.codebook).view(b, h, w)

    def embed(self, codes: Tensor) -> Tensor:
        """Codes (B, h, w) -> their vectors (B, d, h, w)."""
        return self.codebook[codes].permute(0, 3, 1, 2)

    def forward(self, z: Tensor) -> Quantized:
        """Quantise z_e (B, d, h, w); in training mode also update the codebook (EMA, restart)
        or, before initialisation, collect z_e for k-means and pass it through."""
        b, d, h, w = z.shape
        flat = z.permute(0, 2, 3, 1).reshape(-1, d)
        if self.training and not bool(self.initialised):
            self._collect(flat)  # k-means once enough vectors are in
            if not bool(self.initialised):
                codes = nearest_code(flat, self.codebook)
                stats = self._stats(codes)
                return Quantized(z, codes.view(b, h, w), z.new_zeros(()), *stats)
        codes = nearest_code(flat, self.codebook)
        if self.training:
            self._update(flat.detach().float(), codes)
        e = self.codebook[codes].view(b, h, w, d).permute(0, 3, 1, 2).to(z.dtype)
        commitment = self.beta * F.mse_loss(z, e.detach())  # eq. 3's last term
        z_q = z + (e - z).detach()  # straight-through: ∂L/∂z_e = ∂L/∂z_q
        return Quantized(z_q, codes.view(b, h, w), commitment, *self._stats(codes))

    def _stats(self, codes: Tensor) -> tuple[Tensor, Tensor]:
        """Perplexity and the fraction of codes used, of one batch's assignment."""
        used = torch.bincount(codes, minlength=self.n_codes).gt(0).float().mean()
        return perplexity(codes, self.n_codes), used

    @torch.no_grad()
    def _collect(self, flat: Tensor) -> None:
        """Keep the most recent ``kmeans_vectors`` encoder outputs; run k-means once enough."""
        self._collected.append(flat.detach().float().cpu())
        have = sum(len(x) for x in self._collected)
        while self._collected and have - len(self._collected[0]) >= self.kmeans_vectors:
            have -= len(self._collected.pop(0))
        if have >= max(self.kmeans_vectors, self.n_codes):
            vectors = torch.cat(self._collected)[-self.kmeans_vectors :]
            self.init_kmeans(vectors.to(self.codebook.device))

    @torch.no_grad()
    def _update(self, flat: Tensor, codes: Tensor) -> None:
        """One EMA step of the codebook, then the dead-code restart when it is due."""
        counts = torch.bincount(codes, minlength=self.n_codes).float()
        sums = torch.zeros_like(self.ema_sum).index_add_(0, codes, flat)
        self.ema_count.mul_(self.decay).add_(counts, alpha=1 - self.decay)
        self.ema_sum.mul_(self.decay).add_(sums, alpha=1 - self.decay)
        n = self.ema_count.sum()
        smoothed = (self.ema_count + self.eps) / (n + self.n_codes * self.eps) * n  # Laplace
        self.codebook.copy_(self.ema_sum / smoothed[:, None])
        self.usage_count.add_(counts)
        self.updates.add_(1)
        if self.restart_every > 0 and int(self.updates) % self.restart_every == 0:
            self._restart(flat)

    @torch.no_grad()
    def _restart(self, flat: Tensor) -> None:
        """Move every code picked fewer than ``dead_below`` times since the last restart onto a
        random vector of the batch, as a fresh code (EMA count 1)."""
        dead = self.usage_count < self.dead_below
        n_dead = int(dead.sum())
        if n_dead:
            pick = torch.randint(len(flat), (n_dead,), device=flat.device)
            self.codebook[dead] = flat[pick]
            self.ema_sum[dead] = flat[pick]
            self.ema_count[dead] = 1.0
        self.usage_count.zero_()
