"""Train/validation split: random by seed, or by time (the latest activation dates validate, as Kaggle's test did)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from demandnet.data import schema


def split_rows(frame: pd.DataFrame, val_fraction: float, how: str, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Row positions (train, val), each sorted. At least one row goes to each side."""
    n = len(frame)
    if n < 2:
        raise ValueError(f"need at least 2 labelled rows to split train/validation, got {n}")
    if not 0 < val_fraction < 1:
        raise ValueError(f"data.val_fraction must be in (0, 1), got {val_fraction}")
    n_val = min(n - 1, max(1, round(n * val_fraction)))
    if how == "random":
        order = np.random.default_rng(seed).permutation(n)
    elif how == "time":
        dates = schema.parse_dates(frame[schema.DATE])
        # Undated rows count as oldest; a stable sort keeps file order within a day.
        key = dates.fillna(pd.Timestamp.min).to_numpy()
        order = np.argsort(key, kind="stable")[::-1]
    else:
        raise ValueError(f"data.split must be 'random' or 'time', got {how!r}")
    return np.sort(order[n_val:]), np.sort(order[:n_val])
