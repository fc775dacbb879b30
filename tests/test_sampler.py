"""The training order: a function of (seed, epoch) alone, split among ranks, resumable mid-epoch."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from demandnet.data.images import ImagePipeline, resolve_image_config
from demandnet.data.sampler import EpochSampler


def _rows(sampler: EpochSampler) -> list[int]:
    return [row for _, row in sampler]


def test_order_depends_on_seed_and_epoch_only():
    a, b = EpochSampler(50, seed=1, batch_size=8), EpochSampler(50, seed=1, batch_size=8)
    assert sorted(_rows(a)) == list(range(50))
    assert _rows(a) == _rows(b)
    first = _rows(a)
    a.set_epoch(1)
    assert _rows(a) != first and sorted(_rows(a)) == list(range(50))
    assert _rows(EpochSampler(50, seed=2, batch_size=8)) != first
    assert {epoch for epoch, _ in a} == {1}  # each index carries its epoch, for the augmentation seed


@pytest.mark.parametrize("world", [2, 3])
def test_ranks_cover_every_row_with_equal_lengths(world):
    samplers = [EpochSampler(11, seed=0, batch_size=4, rank=r, world=world) for r in range(world)]
    shares = [_rows(s) for s in samplers]
    assert len({len(s) for s in shares}) == 1 and len(shares[0]) == len(samplers[0])
    assert set().union(*shares) == set(range(11))
    assert sum(map(len, shares)) - 11 < world  # at most world - 1 rows padded by wrapping around


def test_progress_resumes_after_the_batches_already_trained():
    full = EpochSampler(40, seed=3, batch_size=8, progress=lambda: (2, 0))
    resumed = EpochSampler(40, seed=3, batch_size=8, progress=lambda: (2, 3))
    assert list(resumed) == list(full)[24:]
    assert len(resumed) == 40  # Lightning counts the epoch's batches from len(): it stays the full epoch


def test_a_training_crop_depends_on_seed_epoch_and_row_only(tmp_path):
    from PIL import Image

    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 255, (90, 120, 3), dtype=np.uint8)).save(tmp_path / "p.jpg")
    config = resolve_image_config("resnet18", 32)
    one, other = (ImagePipeline([tmp_path], config, train=True, seed=7) for _ in range(2))
    other("p", "x")  # a different history of draws must not matter
    crop = one("p", "x", (1, 5))[0]
    assert torch.equal(crop, other("p", "x", (1, 5))[0])
    assert not torch.equal(crop, one("p", "x", (2, 5))[0])
    assert not torch.equal(crop, ImagePipeline([tmp_path], config, train=True, seed=8)("p", "x", (1, 5))[0])
