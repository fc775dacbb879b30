"""Counts the photos that were on disk but could not be used (corrupt, truncated, flat, too large) and says so.

Each bad photo is also warned about by name where it is read (in a DataLoader worker, up to a cap per process);
this callback sees every batch in the main process, so its per-epoch count is complete, also under DDP.
"""

from __future__ import annotations

import logging

import pytorch_lightning as pl
import torch

from demandnet import batch as keys

log = logging.getLogger("demandnet.images")


class PhotoFallbacks(pl.Callback):
    def __init__(self) -> None:
        self.counts: dict[str, list[int]] = {}  # stage -> [unusable, on disk] for the current epoch
        self.totals: dict[str, int] = {}  # stage -> unusable photos in its last epoch (all processes)

    def _count(self, stage: str, batch: dict[str, torch.Tensor]) -> None:
        if keys.PHOTO_ON_DISK not in batch or keys.HAS_IMAGE not in batch:
            return
        on_disk = batch[keys.PHOTO_ON_DISK].bool()
        unusable = on_disk & (batch[keys.HAS_IMAGE] < 0.5)
        counts = self.counts.setdefault(stage, [0, 0])
        counts[0] += int(unusable.sum())
        counts[1] += int(on_disk.sum())

    def _report(self, trainer: pl.Trainer, stage: str) -> None:
        unusable, on_disk = self.counts.pop(stage, [0, 0])
        total = trainer.strategy.reduce(torch.tensor([unusable, on_disk], dtype=torch.float64), reduce_op="sum")
        unusable, on_disk = int(total[0]), int(total[1])
        self.totals[stage] = unusable
        if unusable and trainer.is_global_zero:
            log.warning("%s: %d of %d photos on disk could not be used (corrupt, truncated, flat or too large) and "
                        "got the no-photo stand-in", stage, unusable, on_disk)  # fmt: skip

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        self._count("train", batch)

    def on_validation_batch_end(self, trainer, pl_module, outputs, batch, batch_idx, dataloader_idx=0) -> None:
        self._count("validation", batch)

    def on_predict_batch_end(self, trainer, pl_module, outputs, batch, batch_idx, dataloader_idx=0) -> None:
        self._count("predict", batch)

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._report(trainer, "train")

    def on_validation_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._report(trainer, "validation")

    def on_predict_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._report(trainer, "predict")
