"""The modality ablation: predict the validation set again with one branch's input replaced by its missing-input
stand-in, and see how much the RMSE rises.

Each ablation is a transform of the batch dict, applied by Lightning's `on_before_batch_transfer` hook of a
DataModule that serves the validation rows for `trainer.predict`; so it works whatever model each branch is, and a
branch that is switched off (`model/image=none`) has nothing to ablate.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd
import pytorch_lightning as pl
import torch
from torch import Tensor
from torch.utils.data import DataLoader

from demandnet import batch as keys
from demandnet.data.datamodule import DemandDataModule
from demandnet.predictions import predict_in_order

Batch = dict[str, Tensor]
Transform = Callable[[Batch], Batch]

STAND_INS = {
    "image": "every photo absent: has_image=0, so the branch gives its learned no-photo stand-in",
    "text": "every title and description missing: the tokenizer's encoding of an empty text",
    "tabular": "every categorical in the unknown bucket, every numeric feature missing (the train mean)",
}


def without_image(batch: Batch) -> Batch:
    """As if no row had a usable photo: the dataset's zeros image and has_image=0 (the branch then uses its
    stand-in). photo_on_disk=False too, or the photo counter would report every photo as unusable."""
    out = dict(batch)
    for key in (keys.IMAGE, keys.HAS_IMAGE, keys.PHOTO_ON_DISK):
        if key in out:
            out[key] = torch.zeros_like(out[key])
    return out


def without_tabular(batch: Batch) -> Batch:
    """Index 0 is every column's unknown bucket; a missing numeric value becomes the train mean, 0 after scaling."""
    out = dict(batch)
    for key in (keys.CATEGORICAL, keys.NUMERIC):
        if key in out:
            out[key] = torch.zeros_like(out[key])
    return out


class WithoutText:
    """Every row's text arrays replaced by those the fitted tokenizer gives a row whose texts are missing (navec:
    all padding; a transformer: the special tokens of an empty pair), so any text branch sees its own 'no text'."""

    def __init__(self, tokenizer: object) -> None:
        fields = {"title", "description", *getattr(tokenizer, "fields", ())}
        empty = tokenizer.transform(pd.DataFrame({field: [None] for field in sorted(fields)}))
        self.stand_in = {key: torch.as_tensor(np.asarray(value)) for key, value in empty.items()}  # (1, L) each

    def __call__(self, batch: Batch) -> Batch:
        out = dict(batch)
        for key, row in self.stand_in.items():
            if key in out:
                out[key] = row.to(out[key].dtype).expand(len(out[key]), -1).clone()  # (1, L) -> (B, L)
        return out


def ablations(datamodule: DemandDataModule, branches: list[str]) -> dict[str, Transform]:
    """One transform per branch that is on (the model's `branches` names)."""
    made: dict[str, Callable[[], Transform]] = {
        "image": lambda: without_image,
        "text": lambda: WithoutText(datamodule.text_tokenizer),
        "tabular": lambda: without_tabular,
    }
    return {name: made[name]() for name in branches if name in made}


class ValidationPredict(pl.LightningDataModule):
    """The validation rows of a set-up DemandDataModule as `trainer.predict`'s input, each batch transformed first.

    `predict_set` is what `predict_in_order` checks the gathered rows against (every row exactly once)."""

    def __init__(self, datamodule: DemandDataModule, transform: Transform | None = None) -> None:
        super().__init__()
        self.datamodule = datamodule
        self.transform = transform
        self.predict_set = datamodule.val_set

    def predict_dataloader(self) -> DataLoader:
        return self.datamodule.val_dataloader()  # in order, no padding: each process its own share under DDP

    def on_before_batch_transfer(self, batch: Batch, dataloader_idx: int) -> Batch:
        return self.transform(batch) if self.transform is not None else batch


def predict_validation(
    trainer: pl.Trainer,
    model: pl.LightningModule,
    datamodule: DemandDataModule,
    transform: Transform | None = None,
    ckpt_path: str | None = None,
) -> np.ndarray:
    """(n_val,) predictions of the validation rows in source-row order (`np.sort(val_set.rows)`), on every rank."""
    return predict_in_order(trainer, model, ValidationPredict(datamodule, transform), ckpt_path=ckpt_path)


def rmse(prediction: np.ndarray, target: np.ndarray) -> float:
    return float(np.sqrt(np.mean((np.asarray(prediction, np.float64) - np.asarray(target, np.float64)) ** 2)))


def measure_ablation(
    trainer: pl.Trainer,
    model: pl.LightningModule,
    datamodule: DemandDataModule,
    full: np.ndarray,
    ckpt_path: str | None = None,
) -> dict:
    """The validation RMSE with every branch (`full`: its predictions) and with each branch ablated in turn."""
    target = datamodule.val_set.arrays[keys.TARGET][np.sort(datamodule.val_set.rows)]
    base = rmse(full, target)
    result = {"val_rmse": base, "n_val": len(target), "branches": {}}
    for name, transform in ablations(datamodule, list(model.branches.keys())).items():
        value = rmse(predict_validation(trainer, model, datamodule, transform, ckpt_path), target)
        result["branches"][name] = {
            "val_rmse": value,
            "rise": value - base,
            "rise_percent": 100.0 * (value - base) / base if base > 0 else None,
            "stand_in": STAND_INS[name],
        }
    return result
