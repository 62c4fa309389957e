"""A resumable, seeded order of training items, split across processes.

Epoch ``e`` visits a permutation drawn from ``(seed, e)`` alone, so a run resumed at batch ``b``
of epoch ``e`` sees exactly the items the uninterrupted run saw. Each element is an
``(index, item_seed)`` pair: the dataset draws its crops, flips and degradation levels from
``item_seed``, which makes an item independent of worker count and of what ran before.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
from torch.utils.data import Sampler


class EpochSampler(Sampler[tuple[int, int]]):
    """``steps`` batches of ``batch`` items for one process of ``world``, from batch ``skip``."""

    def __init__(
        self,
        n_items: int,
        batch: int,
        steps: int,
        seed: int,
        epoch: int,
        rank: int = 0,
        world: int = 1,
        skip: int = 0,
    ) -> None:
        self.n_items, self.batch, self.steps = n_items, batch, steps
        self.seed, self.epoch, self.rank, self.world, self.skip = seed, epoch, rank, world, skip

    def _order(self) -> np.ndarray:
        rng = np.random.default_rng([self.seed, self.epoch])
        need = self.steps * self.batch * self.world
        reps = -(-need // self.n_items)  # an epoch may take more items than the set holds
        return np.concatenate([rng.permutation(self.n_items) for _ in range(reps)])[:need]

    def __iter__(self) -> Iterator[tuple[int, int]]:
        order = self._order()
        seeds = np.random.default_rng([self.seed, self.epoch, 1]).integers(0, 2**31, len(order))
        start = self.skip * self.batch * self.world
        for i in range(start + self.rank, len(order), self.world):
            yield int(order[i]), int(seeds[i])

    def __len__(self) -> int:
        return (self.steps - self.skip) * self.batch
