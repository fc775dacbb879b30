"""At the end of a training run: the validation predictions and the ablation (they need the model, so every rank
predicts), written to the run directory by rank 0, then the report built from those files."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd
import pytorch_lightning as pl

from demandnet import batch as keys
from demandnet.data.datamodule import DemandDataModule
from demandnet.outputs import atomic_write_text, write_json
from demandnet.report.ablation import measure_ablation, predict_validation
from demandnet.report.build import ABLATION_FILE, PREDICTIONS_FILE, build_report

log = logging.getLogger(__name__)
CATEGORY = "parent_category_name"
UNSEEN = "(not in train)"  # category code 0: the unknown bucket


def validation_frame(datamodule: DemandDataModule, predictions: np.ndarray) -> pd.DataFrame:
    """item_id, prediction, target, parent_category_name of every validation row, in source-row order (the order
    of `predict_validation`). The category is decoded from the fitted map, so the CSV is not read again."""
    rows = np.sort(datamodule.val_set.rows)
    column = datamodule.tabular.columns.index(CATEGORY)
    names = np.asarray([UNSEEN, *datamodule.tabular.state["categories"][CATEGORY]], dtype=object)
    return pd.DataFrame(
        {
            "item_id": datamodule.val_set.item_ids[rows],
            "prediction": predictions,
            "target": datamodule.val_set.arrays[keys.TARGET][rows].astype(np.float64),
            CATEGORY: names[datamodule.val_set.arrays[keys.CATEGORICAL][rows, column]],
        }
    )


def write_run_report(
    trainer: pl.Trainer,
    model: pl.LightningModule,
    datamodule: DemandDataModule,
    run_dir: str | Path,
    ckpt_path: str | None = None,
) -> None:
    """Call on every rank at the end of train.run. A failure to draw never fails the training run."""
    run_dir = Path(run_dir)
    if trainer.fast_dev_run:
        log.info("debug=fdr: no validation predictions or ablation, the report shows what the run wrote")
    else:
        predictions = predict_validation(trainer, model, datamodule, ckpt_path=ckpt_path)
        ablation = measure_ablation(trainer, model, datamodule, predictions, ckpt_path=ckpt_path)
        if trainer.is_global_zero:
            frame = validation_frame(datamodule, predictions)
            atomic_write_text(run_dir / PREDICTIONS_FILE, frame.to_csv(index=False, float_format="%.6f"))
            write_json(run_dir / ABLATION_FILE, ablation)
    if not trainer.is_global_zero:
        return
    try:
        page = build_report(run_dir)
        log.info("run report: %s", page)
    except Exception:
        log.warning("could not build the run report (python -m demandnet.report %s retries)", run_dir, exc_info=True)
