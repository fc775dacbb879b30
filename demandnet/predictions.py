"""Run `trainer.predict` and put the predictions of every process back into input order."""

from __future__ import annotations

import numpy as np
import pytorch_lightning as pl
import torch

from demandnet import batch as keys
from demandnet.data.datamodule import DemandDataModule
from demandnet.distributed import eval_share, gather


def predict_in_order(
    trainer: pl.Trainer, model: pl.LightningModule, datamodule: DemandDataModule, ckpt_path: str | None = None
) -> np.ndarray:
    """(len(predict_set),) float64 predictions of `datamodule.predict_set` in source-row order, on every process.

    Each process predicts its own share of rows (no padding); the shares are gathered and checked to cover every
    row exactly once, so no row is lost or predicted twice.
    """
    outputs = trainer.predict(model, datamodule=datamodule, ckpt_path=ckpt_path) or []
    if eval_share(len(datamodule.predict_set))[1]:
        outputs = []  # this process ran a stand-in row only (fewer rows than processes)
    index = torch.cat([o[keys.INDEX] for o in outputs]).numpy() if outputs else np.zeros(0, np.int64)
    values = torch.cat([o["prediction"] for o in outputs]).double().numpy() if outputs else np.zeros(0)
    shares = gather((index, values))
    index = np.concatenate([s[0] for s in shares])
    values = np.concatenate([s[1] for s in shares])
    expected = np.sort(np.asarray(datamodule.predict_set.rows))  # source-row positions, as carried in batch[INDEX]
    order = np.argsort(index, kind="stable")
    index, values = index[order], values[order]
    if not np.array_equal(index, expected):
        raise RuntimeError(
            f"prediction covered {len(np.unique(index))} distinct rows of {len(expected)} ({len(index)} predictions):"
            " refusing to write an incomplete result"
        )
    return values
