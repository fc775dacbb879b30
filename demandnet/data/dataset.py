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

    def __getitems__(self, indices: Sequence[int] | Sequence[tuple[int, int]]) -> dict[str, torch.Tensor]:
        """A whole batch by fancy indexing: the DataLoader calls this once per batch (see `collate_batch`).

        Indices from `EpochSampler` are (epoch, position) pairs: the epoch seeds each row's augmentation.
        """
        epochs = None
        if len(indices) and isinstance(indices[0], (tuple, list)):
            epochs, indices = zip(*indices)
        rows = self.rows[np.asarray(indices, dtype=np.int64)]
        batch = {k: torch.from_numpy(np.ascontiguousarray(v[rows])) for k, v in self.arrays.items()}
        batch = {k: v.long() if v.dtype in (torch.int32, torch.int16, torch.int8) else v for k, v in batch.items()}
        batch[keys.INDEX] = torch.from_numpy(rows)
        if self.pipeline is not None and self.images is not None:
            seeds = [None] * len(rows) if epochs is None else [(e, int(r)) for e, r in zip(epochs, rows)]
            pictures = [self._picture(int(r), s) for r, s in zip(rows, seeds)]
            batch[keys.IMAGE] = torch.stack([p for p, _ in pictures])
            batch[keys.HAS_IMAGE] = torch.tensor([float(ok) for _, ok in pictures])
        return batch

    def _picture(self, row: int, augment_key: tuple[int, int] | None) -> tuple[torch.Tensor, bool]:
        """One row's photo; any failure names the row, item_id and file (a worker traceback alone does not)."""
        try:
            return self.pipeline(self.images[row], str(self.item_ids[row]), augment_key)
        except Exception as e:
            folders = ", ".join(str(d) for d in self.pipeline.image_dirs) or "no image folder"
            raise RowError(
                f"data row {row + 1} (item_id {str(self.item_ids[row])!r}, image {str(self.images[row])!r} in {folders}): "
                f"{type(e).__name__}: {e}"
            ) from e


class RowError(RuntimeError):
    """Loading one row failed; the message names the row, its item_id and its photo."""


def collate_batch(batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The dataset already returns a collated batch from `__getitems__`; the DataLoader passes it through."""
    return batch
