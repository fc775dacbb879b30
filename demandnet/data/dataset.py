"""A Dataset over pre-encoded numpy arrays plus lazy photo reads: no pandas and no per-row Python objects."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch.utils.data import Dataset

from demandnet import batch as keys
from demandnet.data.images import ImagePipeline


class DemandDataset(Dataset):
    """Rows `rows` of the encoded arrays; each returned row or batch carries its position in the source file.

    `arrays` maps batch keys to arrays with one row per source row (categorical, numeric, text ids, target).
    `images` holds the image field of every source row (a fixed-width unicode array), read through `pipeline`.
    """

    def __init__(
        self,
        arrays: dict[str, np.ndarray],
        rows: np.ndarray,
        item_ids: np.ndarray,
        images: np.ndarray | None = None,
        pipeline: ImagePipeline | None = None,
    ) -> None:
        self.arrays = arrays
        self.rows = np.asarray(rows, dtype=np.int64)
        self.item_ids = item_ids
        self.images = images
        self.pipeline = pipeline

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        one = self.__getitems__([i])
        return {k: v[0] for k, v in one.items()}

    def __getitems__(self, indices: Sequence[int]) -> dict[str, torch.Tensor]:
        """A whole batch by fancy indexing: the DataLoader calls this once per batch (see `collate_batch`)."""
        rows = self.rows[np.asarray(indices, dtype=np.int64)]
        batch = {k: torch.from_numpy(np.ascontiguousarray(v[rows])) for k, v in self.arrays.items()}
        batch = {k: v.long() if v.dtype in (torch.int32, torch.int16, torch.int8) else v for k, v in batch.items()}
        batch[keys.INDEX] = torch.from_numpy(rows)
        if self.pipeline is not None and self.images is not None:
            pictures = [self.pipeline(self.images[r], str(self.item_ids[r])) for r in rows]
            batch[keys.IMAGE] = torch.stack([p for p, _ in pictures])
            batch[keys.HAS_IMAGE] = torch.tensor([float(ok) for _, ok in pictures])
        return batch


def collate_batch(batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The dataset already returns a collated batch from `__getitems__`; the DataLoader passes it through."""
    return batch
