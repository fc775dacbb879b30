"""K-fold cross-validation: one model per fold, out-of-fold predictions, a submission that averages the folds.

    python train.py cv.folds=5                               # random folds by seed
    python train.py cv.folds=5 cv.split=time cv.gap_days=2   # date-ordered folds, 2 days left out before each

Each fold is an ordinary run (`demandnet.train.train_one`) in RUN_DIR/folds/fold_<k>/ (checkpoints, metrics.json,
submission.csv), whose DataModule validates on fold k and fits its preprocessing on the other folds only. RUN_DIR
then gets oof.csv (every training row once, predicted by the model that did not train on it), cv_metrics.json and
submission.csv (the mean of the folds' test predictions). Under DDP every process runs every fold; rank 0 writes.
"""

from __future__ import annotations

import copy
import logging
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from omegaconf import DictConfig, open_dict

from demandnet import batch as keys
from demandnet.distributed import world
from demandnet.outputs import atomic_write_text, write_json, write_submission
from demandnet.predictions import predict_in_order
from demandnet.train import refuse_a_used_run_dir, train_one

log = logging.getLogger(__name__)
DECIMALS = 6  # as in submission.csv; cv_metrics' oof_rmse is computed from these rounded values


@dataclass
class FoldResult:
    rows: np.ndarray  # (n_val,) source-row positions in train.csv, sorted
    item_ids: np.ndarray
    targets: np.ndarray
    predictions: np.ndarray  # (n_val,) by the best checkpoint of this fold
    test_predictions: np.ndarray | None  # (n_test,) in test-file order
    test_item_ids: np.ndarray | None
    metrics: dict  # this fold's metrics.json
    n_rows: int  # labelled rows in train.csv, which the folds' validation rows must cover exactly


def fold_config(cfg: DictConfig, fold: int) -> DictConfig:
    """The run config of one fold: its own output folder, and a DataModule that validates on this fold."""
    one = copy.deepcopy(cfg)
    with open_dict(one):
        one.paths.output_dir = str(Path(cfg.paths.output_dir) / "folds" / f"fold_{fold}")
        one.data.fold, one.data.folds = fold, int(cfg.cv.folds)
        one.data.split, one.data.gap_days = str(cfg.cv.split), int(cfg.cv.gap_days)
    return one


def run_fold(cfg: DictConfig, fold: int) -> FoldResult:
    """Train fold `fold` (seeded afresh by train_one) and predict its validation rows with its best checkpoint."""
    trained = train_one(fold_config(cfg, fold))
    datamodule = trained.datamodule
    val = datamodule.val_set
    datamodule.predict_set = val  # predict_in_order returns these rows' predictions in sorted row order
    predictions = predict_in_order(trained.trainer, trained.model, datamodule, ckpt_path=trained.best)
    rows = np.sort(val.rows)
    test = datamodule.test_set
    return FoldResult(rows, val.item_ids[rows], val.arrays[keys.TARGET][rows].astype(np.float64), predictions,
                      trained.test_predictions, test.item_ids if test is not None else None, trained.metrics,
                      len(val.arrays[keys.TARGET]))  # fmt: skip


def out_of_fold(results: list[FoldResult]) -> pd.DataFrame:
    """item_id, fold, prediction, target for every training row once, in train.csv order."""
    rows = np.concatenate([r.rows for r in results])
    order = np.argsort(rows, kind="stable")
    if not np.array_equal(rows[order], np.arange(results[0].n_rows)):
        raise RuntimeError(
            f"the validation folds cover {len(np.unique(rows))} distinct rows of {results[0].n_rows} with {len(rows)} "
            "predictions: refusing to write an incomplete oof.csv"
        )
    frame = pd.DataFrame({
        "item_id": np.concatenate([r.item_ids for r in results]),
        "fold": np.concatenate([np.full(len(r.rows), k) for k, r in enumerate(results)]),
        "prediction": np.concatenate([r.predictions for r in results]).clip(0.0, 1.0).round(DECIMALS),
        "target": np.concatenate([r.targets for r in results]).round(DECIMALS),
    })  # fmt: skip
    return frame.iloc[order].reset_index(drop=True)


def rmse(frame: pd.DataFrame) -> float:
    return float(np.sqrt(np.mean((frame["prediction"].to_numpy() - frame["target"].to_numpy()) ** 2)))


def _pooled(per_fold: list[dict], key: str) -> float | None:
    """A per-fold RMSE pooled over all out-of-fold rows (sqrt of the n_val-weighted mean square); None if unknown."""
    if any(m.get(key) is None for m in per_fold):
        return None
    n = np.array([m["n_val"] for m in per_fold], dtype=np.float64)
    return float(np.sqrt(np.sum(n * np.array([m[key] for m in per_fold]) ** 2) / n.sum()))


def cv_metrics(cfg: DictConfig, results: list[FoldResult], oof: pd.DataFrame, started: float) -> dict:
    fold_keys = ("val_rmse", "n_train", "n_val", "train_mean_rmse", "noise_floor_rmse", "epochs", "best_checkpoint",
                 "wall_seconds")  # fmt: skip
    per_fold = [{"fold": k, **{key: r.metrics.get(key) for key in fold_keys}} for k, r in enumerate(results)]
    scores = np.array([m["val_rmse"] for m in per_fold])
    run_dir = Path(cfg.paths.output_dir)
    return {
        "folds": len(results),
        "split": str(cfg.cv.split),
        "gap_days": int(cfg.cv.gap_days),
        "oof_rmse": rmse(oof),
        "mean_val_rmse": float(scores.mean()),
        "std_val_rmse": float(scores.std()),  # population std over folds (ddof=0, as scikit-learn's cv results)
        "train_mean_rmse": _pooled(per_fold, "train_mean_rmse"),  # each row predicted by its fold's train mean
        "noise_floor_rmse": _pooled(per_fold, "noise_floor_rmse"),
        "n_oof": len(oof),
        "n_test": len(results[0].test_predictions) if results[0].test_predictions is not None else 0,
        "oof": str(run_dir / "oof.csv"),
        "submission": str(run_dir / "submission.csv") if results[0].test_predictions is not None else None,
        "per_fold": per_fold,
        "wall_seconds": round(time.time() - started, 1),
    }


def refuse_what_cv_cannot_do(cfg: DictConfig, run_dir: Path) -> None:
    if cfg.get("ckpt_path"):
        raise SystemExit("demandnet: ckpt_path= names one checkpoint, but cv.folds trains one model per fold: "
                         "resume a k-fold run with resume=true (each fold continues from its own last.ckpt)")  # fmt: skip
    if cfg.trainer.get("fast_dev_run"):
        raise SystemExit("demandnet: debug=fdr runs one batch, which makes no out-of-fold predictions: run it "
                         "without cv.folds")  # fmt: skip
    refuse_a_used_run_dir(cfg, run_dir)  # a single run's checkpoints there
    if (run_dir / "cv_metrics.json").is_file() and not cfg.get("resume"):
        raise SystemExit(f"demandnet: {run_dir} already holds a k-fold run (cv_metrics.json); resume=true continues "
                         "it, another hydra.run.dir starts a new one")  # fmt: skip


def run_folds(cfg: DictConfig) -> float:
    """Train every fold, write oof.csv, cv_metrics.json and submission.csv; returns the out-of-fold RMSE."""
    started = time.time()
    run_dir = Path(cfg.paths.output_dir)
    refuse_what_cv_cannot_do(cfg, run_dir)
    results = []
    for fold in range(int(cfg.cv.folds)):
        log.info("cross-validation: fold %d of %d", fold, int(cfg.cv.folds))
        results.append(run_fold(cfg, fold))
    oof = out_of_fold(results)
    metrics = cv_metrics(cfg, results, oof, started)
    if world()[1] == 0:
        atomic_write_text(run_dir / "oof.csv", oof.to_csv(index=False, float_format=f"%.{DECIMALS}f"))
        if metrics["submission"]:
            mean = np.mean([r.test_predictions for r in results], axis=0)
            write_submission(run_dir / "submission.csv", results[0].test_item_ids, mean)
        write_json(run_dir / "cv_metrics.json", metrics)
        floor = metrics["noise_floor_rmse"]
        log.info("%d-fold oof_rmse %.4f (folds %s) | train-mean rmse %.4f | noise floor %s | run dir %s",
                 metrics["folds"], metrics["oof_rmse"], " ".join(f"{m['val_rmse']:.4f}" for m in metrics["per_fold"]),
                 metrics["train_mean_rmse"], f"{floor:.4f}" if floor is not None else "n/a", run_dir)  # fmt: skip
    return metrics["oof_rmse"]
