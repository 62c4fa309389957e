"""Multi-process training through torchrun: DistributedDataParallel, nothing home-made.

``torchrun --nproc_per_node K -m avrestore train CONFIG`` sets RANK / WORLD_SIZE / LOCAL_RANK;
one process per GPU uses NCCL, CPU processes use gloo.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class Dist:
    """Where this process stands: its rank, the world size and its device."""

    rank: int
    world: int
    device: torch.device

    @property
    def main(self) -> bool:
        """True on the process that writes checkpoints, logs and progress."""
        return self.rank == 0


def init_distributed(device: str = "auto") -> Dist:
    """Join the process group when launched by torchrun; otherwise a single process."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local = int(os.environ.get("LOCAL_RANK", "0"))
    use_cuda = torch.cuda.is_available() if device == "auto" else device == "cuda"
    dev = torch.device(f"cuda:{local}" if use_cuda else "cpu")
    if use_cuda:
        torch.cuda.set_device(dev)
    if world > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if use_cuda else "gloo")
    return Dist(rank, world, dev)


def close_distributed() -> None:
    """Leave the process group, if one was joined."""
    if dist.is_initialized():
        dist.destroy_process_group()
