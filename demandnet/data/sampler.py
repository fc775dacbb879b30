"""The training sampler: an order that is a function of (seed, epoch) alone, split among DDP ranks, resumable.

A run killed in the middle of an epoch and resumed from its last step checkpoint must see the same batches, in the
same order, as a run that was never stopped. So the order depends only on (seed, epoch), and each iteration asks
`progress` (the Trainer's epoch and step counters) which epoch it is and how many of its batches were trained
before the checkpoint. It asks rather than trusts `set_epoch`, because Lightning creates the first iterator after
a resume, and DataLoader workers start drawing indices from it, before it calls `set_epoch`.

Each index is yielded as `(epoch, row)`, so the Dataset can seed per-row augmentation from (seed, epoch, row):
the same crop for the same row in the same epoch, whatever the worker count, the rank or a restart.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Iterator

import numpy as np
from torch.utils.data import DataLoader, Sampler

log = logging.getLogger(__name__)


class EpochSampler(Sampler[tuple[int, int]]):
    """Shuffled positions 0..n-1 per epoch; with `world` > 1 each rank takes every world-th one (padded to equal
    length by wrapping, as DistributedSampler does, so every rank runs the same number of steps)."""

    def __init__(
        self,
        n: int,
        seed: int,
        batch_size: int,
        rank: int = 0,
        world: int = 1,
        shuffle: bool = True,
        progress: Callable[[], tuple[int, int]] | None = None,
    ) -> None:
        if n < 1:
            raise ValueError("EpochSampler needs at least one row")
        self.n, self.seed, self.batch_size, self.rank, self.world = n, int(seed), int(batch_size), rank, world
        self.shuffle = shuffle
        self.progress = progress
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Lightning calls this at the start of every training epoch."""
        self.epoch = int(epoch)

    def order(self, epoch: int) -> np.ndarray:
        """This rank's positions for `epoch`, from the start of the epoch."""
        positions = np.arange(self.n)
        if self.shuffle:
            positions = np.random.default_rng([self.seed, epoch]).permutation(self.n)
        per_rank = len(self)
        padded = np.resize(positions, per_rank * self.world)  # wraps around: every rank gets per_rank rows
        return padded[self.rank :: self.world]

    def __len__(self) -> int:
        return math.ceil(self.n / self.world)

    def __iter__(self) -> Iterator[tuple[int, int]]:
        epoch, batches_done = self.progress() if self.progress else (self.epoch, 0)
        skip = max(0, int(batches_done)) * self.batch_size
        return iter([(epoch, int(p)) for p in self.order(epoch)[skip:]])

    def state_dict(self) -> dict:
        return {"seed": self.seed, "batch_size": self.batch_size, "world": self.world, "n": self.n}


class ResumableLoader(DataLoader):
    """A DataLoader over an EpochSampler that Lightning recognises as resumable (`state_dict`/`load_state_dict`).

    The position within the epoch comes from the Trainer's step count (see EpochSampler), so the saved state only
    records what fixes the batch order; a resume under other settings is warned about, since its order differs.
    """

    def state_dict(self) -> dict:
        return self.sampler.state_dict()

    def load_state_dict(self, state: dict) -> None:
        now = self.sampler.state_dict()
        changed = [k for k, v in now.items() if state.get(k) != v]
        if not changed:
            return
        described = ", ".join(f"{k} {state.get(k)} -> {now[k]}" for k in changed)
        mid_epoch = self.sampler.progress is not None and self.sampler.progress()[1] > 0
        if mid_epoch and {"batch_size", "world", "n"} & set(changed):
            # Lightning counts the epoch's trained batches in the old batch size: the rest of it would be skipped
            raise ValueError(
                f"this checkpoint was saved in the middle of an epoch with other batch settings ({described}); "
                "resume with the settings of that run, or from a checkpoint saved at the end of an epoch"
            )
        log.warning(
            "resuming with other data settings than the checkpoint (%s): the rest of this epoch sees a different "
            "batch order than the interrupted run would have",
            described,
        )
