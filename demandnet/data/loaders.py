"""DataLoader settings shared by every split: how many worker processes, and the loader built with them."""

from __future__ import annotations

import os

import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from demandnet.data.dataset import collate_batch
from demandnet.data.sampler import ResumableLoader


def resolve_workers(num_workers: int | str) -> int:
    """`auto`: one worker per core but one (at most 8), none when training on 2 CPU cores or fewer."""
    if num_workers != "auto":
        return int(num_workers)
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    if cores <= 2 and not torch.cuda.is_available():
        # Training on so few CPU cores, a worker only takes a core from the training threads: loading between the
        # steps is as fast with photos decoded and faster with them cached (benchmarks/pipeline.py, 2 cores).
        return 0
    # Keep one core for the training step; photo decoding is the work that workers take.
    return min(8, max(1, cores - 1))


def data_loader(
    dataset: Dataset, batch_size: int, sampler: Sampler | None, workers: int, seed: int, resumable: bool
) -> DataLoader:
    """Persistent workers, pinned memory on GPU, prefetch 4; `resumable`: the training loader (sampler.py)."""
    return (ResumableLoader if resumable else DataLoader)(
        dataset,
        batch_size=batch_size,
        sampler=sampler,
        num_workers=workers,
        collate_fn=collate_batch,
        persistent_workers=workers > 0,
        pin_memory=torch.cuda.is_available(),
        worker_init_fn=_worker_init if workers > 0 else None,
        prefetch_factor=4 if workers > 0 else None,
        # Worker seeds come from this generator, not the global RNG, so starting an iterator never shifts the
        # model's dropout stream (a resumed run then draws the same numbers as an uninterrupted one).
        generator=torch.Generator().manual_seed(seed),
    )


def _worker_init(_: int) -> None:
    torch.set_num_threads(1)  # workers decode photos; many torch threads per worker only oversubscribe the CPU
