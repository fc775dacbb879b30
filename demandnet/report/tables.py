"""The numbers behind the plots: RMSE per group of validation rows, and the learning curves from the csv logger."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

BUCKETS = ("exactly 0", "between", "exactly 1")


def target_bucket(target: np.ndarray | pd.Series) -> np.ndarray:
    """(N,) bucket names: deal_probability == 0 (most ads), strictly between, == 1."""
    target = np.asarray(target, dtype=np.float64)
    return np.where(target == 0.0, BUCKETS[0], np.where(target == 1.0, BUCKETS[2], BUCKETS[1]))


def rmse_table(frame: pd.DataFrame, by: str | np.ndarray, order: list[str] | None = None) -> pd.DataFrame:
    """One row per group: group, rows, rmse, mean_target, mean_prediction; most rows first unless `order` is given
    (groups of `order` with no rows get rows=0 and NaN)."""
    keys = frame[by] if isinstance(by, str) else pd.Series(by, index=frame.index)
    error = (frame["prediction"] - frame["target"]) ** 2
    grouped = pd.DataFrame({"group": keys.astype(str), "error": error, "t": frame["target"], "p": frame["prediction"]})
    table = grouped.groupby("group", sort=False).agg(
        rows=("error", "size"), mse=("error", "mean"), mean_target=("t", "mean"), mean_prediction=("p", "mean")
    )
    table["rmse"] = np.sqrt(table.pop("mse"))
    if order is not None:
        table = table.reindex(order)
        table["rows"] = table["rows"].fillna(0).astype(int)
    else:
        table = table.sort_values(["rows", "rmse"], ascending=[False, False], kind="stable")
    return table.rename_axis("group").reset_index()[["group", "rows", "rmse", "mean_target", "mean_prediction"]]


def rmse_by_bucket(frame: pd.DataFrame) -> pd.DataFrame:
    return rmse_table(frame, target_bucket(frame["target"]), order=list(BUCKETS))


def rmse_by_category(frame: pd.DataFrame, column: str = "parent_category_name") -> pd.DataFrame:
    return rmse_table(frame, column)


def epoch_curves(metrics_csv: Path) -> pd.DataFrame:
    """Per training epoch (1-based index): train_loss (the epoch mean), val_loss, val_rmse.

    Lightning's CSVLogger writes one row per logging call. The validation after `fit` (of the best checkpoint) is
    logged at an epoch with no training rows, so only epochs that trained count; after a resume, an epoch logged
    twice keeps its last values.
    """
    log = pd.read_csv(metrics_csv)
    if "epoch" not in log.columns:
        raise ValueError(f"{metrics_csv} has no epoch column (is it a Lightning CSVLogger file?)")
    trained = set(log.loc[log.filter(like="train/").notna().any(axis=1), "epoch"].dropna().astype(int))
    columns = {"train/loss_epoch": "train_loss", "val/loss": "val_loss", "val/rmse": "val_rmse"}
    present = {k: v for k, v in columns.items() if k in log.columns}
    per_epoch = log[log["epoch"].isin(trained)].groupby("epoch")[list(present)].last().rename(columns=present)
    per_epoch = per_epoch.reindex(columns=list(columns.values()))
    per_epoch.index = per_epoch.index.astype(int) + 1
    return per_epoch.rename_axis("epoch")


def step_curve(metrics_csv: Path) -> pd.DataFrame:
    """Per-step training loss against the epochs done (0-based epoch e's k-th of n logged steps at e + k/n, so
    an epoch's last step lines up with its point in `epoch_curves`)."""
    log = pd.read_csv(metrics_csv)
    if "train/loss_step" not in log.columns:
        return pd.DataFrame(columns=["epoch", "loss"])
    steps = log.dropna(subset=["train/loss_step"]).drop_duplicates("step", keep="last")
    position = (steps.groupby("epoch").cumcount() + 1) / steps.groupby("epoch")["step"].transform("size")
    return pd.DataFrame({"epoch": steps["epoch"] + position, "loss": steps["train/loss_step"]})
