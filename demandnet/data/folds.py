"""K-fold assignment for cross-validation: random by seed, or by time (contiguous activation-date ranges).

`assign_folds` gives every labelled row one fold; `fold_rows` turns a fold into (train, val) row positions, leaving
out of training the `gap_days` days just before a time fold so that the model never trains on the days that lead
into the period it is judged on.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from demandnet.data import schema

SPLITS = ("random", "time")


def row_days(frame: pd.DataFrame) -> np.ndarray:
    """(n,) float64 activation day of every row (days since 1970-01-01); undated rows are -inf, i.e. the oldest."""
    dates = schema.parse_dates(frame[schema.DATE]).dt.floor("D")
    days = (dates - pd.Timestamp("1970-01-01")).dt.days.to_numpy(dtype=np.float64, na_value=np.nan)
    return np.where(np.isnan(days), -np.inf, days)


def assign_folds(frame: pd.DataFrame, folds: int, how: str = "random", seed: int = 42) -> np.ndarray:
    """(n,) int64 fold index in [0, folds) per row, deterministic by `seed` (random) or by the dates (time).

    random: a seeded permutation dealt round-robin, so fold sizes differ by at most one row.
    time: whole days in date order, cut into `folds` contiguous ranges of about n / folds rows each (a day is
    never split between two folds); fold 0 holds the oldest days (and the undated rows), the last fold the newest.
    """
    n = len(frame)
    if not isinstance(folds, (int, np.integer)) or folds < 2:
        raise ValueError(f"cv.folds must be an integer >= 2 for k-fold, got {folds!r}")
    if n < folds:
        raise ValueError(f"cv.folds={folds} needs at least {folds} labelled rows, got {n}")
    if how == "random":
        fold = np.empty(n, dtype=np.int64)
        fold[np.random.default_rng(seed).permutation(n)] = np.arange(n) % folds
        return fold
    if how != "time":
        raise ValueError(f"cv.split must be one of {SPLITS}, got {how!r}")
    days, first, counts = np.unique(row_days(frame), return_inverse=True, return_counts=True)
    # Each day goes to the fold that holds the middle of its rows in date order: contiguous, balanced ranges.
    middle = np.cumsum(counts) - counts / 2
    day_fold = np.minimum((middle * folds / n).astype(np.int64), folds - 1)
    empty = sorted(set(range(folds)) - set(day_fold.tolist()))
    if empty:
        raise ValueError(
            f"cv.split=time cannot cut {len(days)} distinct activation dates ({n} rows) into {folds} date ranges "
            f"(fold(s) {empty} would be empty): use fewer folds or cv.split=random"
        )
    return day_fold[first]


def fold_rows(
    frame: pd.DataFrame, fold: int, folds: int, how: str = "random", seed: int = 42, gap_days: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Row positions (train, val), each sorted: val is fold `fold`, train the other folds less the gap.

    With how="time" and gap_days=N, rows dated in the N days before the validation fold's first day are in
    neither side for this fold (they still validate in their own fold, so out-of-fold predictions cover them).
    """
    if not isinstance(gap_days, (int, np.integer)) or gap_days < 0:
        raise ValueError(f"cv.gap_days must be a whole number of days >= 0, got {gap_days!r}")
    if gap_days and how != "time":
        raise ValueError(f"cv.gap_days={gap_days} needs cv.split=time (random folds have no order in time)")
    assigned = assign_folds(frame, folds, how, seed)
    if not 0 <= fold < folds:
        raise ValueError(f"fold must be in [0, {folds}), got {fold}")
    val = assigned == fold
    train = ~val
    if gap_days:
        days = row_days(frame)
        start = days[val].min()  # -inf for a fold of undated rows: then nothing lies before it
        train &= ~((days >= start - gap_days) & (days < start))
    if not train.any():
        raise ValueError(f"fold {fold} of {folds} leaves no training rows (cv.gap_days={gap_days} is too long)")
    return np.flatnonzero(train), np.flatnonzero(val)
