"""Which process this is, and which rows of every global batch are its own.

Under `torchrun`, N processes (ranks) train one model. `train.batch_size` stays the global
batch: rank r owns rows [r*B/N, (r+1)*B/N) of each one. Every rank runs the same random
streams (data order, noise, penalty and augmentation draws) and keeps its own rows of each draw,
so the ranks see disjoint data and noise, and N ranks compute what one process computes with
the whole batch (up to the order of float sums). Nothing here talks to other processes; that is
`gankit.training.distributed`.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from gankit.errors import GankitError

T = TypeVar("T")


@dataclass(frozen=True)
class Ranks:
    rank: int = 0  # this process among all processes of the job, 0 = the one that writes files
    world_size: int = 1  # processes in the job, over every node
    local_rank: int = 0  # this process among those on its node: picks its GPU
    local_world_size: int = 1  # processes on this node: they share its CPU cores

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def rows(self, n_global: int) -> slice:
        """This rank's rows of a global batch of `n_global`; refuses a batch that does not divide."""
        if n_global % self.world_size:
            raise GankitError(f"train.batch_size={n_global} does not divide among {self.world_size} processes; "
                              f"use a multiple of {self.world_size}.")
        share = n_global // self.world_size
        return slice(self.rank * share, (self.rank + 1) * share)

    def take(self, batch: T) -> T:
        """This rank's rows of a global batch (a tensor, or None for an unlabelled batch)."""
        return batch if batch is None or self.world_size == 1 else batch[self.rows(len(batch))]


SINGLE = Ranks()


def ranks_from_env() -> Ranks:
    """The ranks torchrun (or SLURM through torchrun) set for this process; one process otherwise."""
    env = os.environ
    world = int(env.get("WORLD_SIZE", 1))
    return Ranks(rank=int(env.get("RANK", 0)), world_size=world, local_rank=int(env.get("LOCAL_RANK", 0)),
                 local_world_size=int(env.get("LOCAL_WORLD_SIZE", world)))


def current_ranks() -> Ranks:
    """The ranks of the running process group, or one process when there is none."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        return Ranks(rank=dist.get_rank(), world_size=dist.get_world_size())
    return SINGLE


def draw_share(draw: Callable[[int], T], n_local: int) -> T:
    """`draw(n)` for this rank's `n_local` rows: every rank draws the global count from the same
    stream and keeps its rows, so the streams stay in step and the draws stay disjoint."""
    ranks = current_ranks()
    if ranks.world_size == 1:
        return draw(n_local)
    return ranks.take(draw(n_local * ranks.world_size))
