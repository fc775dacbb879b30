"""The validation RMSE of two reference predictions, stored with every run: the train mean, and for synthetic data
the true expectation E[target | features] (the noise floor: no model can do better on average)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from demandnet.data import schema

EXPECTED_FILE = "expected.csv"  # written by the synthetic generator beside train.csv: E[target | features] per item_id


def reference_rmse(frame: pd.DataFrame, train_rows: np.ndarray, val_rows: np.ndarray, expected_path: Path) -> dict:
    """{"train_mean_rmse": float, "noise_floor_rmse": float, or None without a complete expected file}."""
    target = frame[schema.TARGET].to_numpy(dtype=np.float64)
    val = target[val_rows]
    result = {"train_mean_rmse": float(np.sqrt(np.mean((val - target[train_rows].mean()) ** 2))),
              "noise_floor_rmse": None}  # fmt: skip
    if expected_path.is_file():
        expected = pd.read_csv(expected_path, dtype={schema.ID: "string"}).set_index(schema.ID)
        values = frame[schema.ID].iloc[val_rows].map(expected.iloc[:, 0]).to_numpy(dtype=np.float64)
        if np.isfinite(values).all():
            result["noise_floor_rmse"] = float(np.sqrt(np.mean((val - values) ** 2)))
    return result
