"""K-fold assignment (random and by time, with a gap) and a DataModule that validates on one fold."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from demandnet.data import schema
from demandnet.data.datamodule import DemandDataModule
from demandnet.data.folds import assign_folds, fold_rows, row_days
from demandnet.data.tabular import TabularPreprocessor


def _dated(days: list[int], undated: int = 0) -> pd.DataFrame:
    """One row per entry of `days` (day offsets from 2017-03-15, in shuffled file order) plus undated rows."""
    dates = [str((pd.Timestamp("2017-03-15") + pd.Timedelta(days=d)).date()) for d in days] + [None] * undated
    order = np.random.default_rng(0).permutation(len(dates))
    return pd.DataFrame({schema.DATE: [dates[i] for i in order]})


def test_random_folds_are_balanced_deterministic_by_seed_and_cover_every_row():
    frame = pd.DataFrame({schema.DATE: ["2017-03-15"] * 103})
    folds = assign_folds(frame, 5, "random", seed=7)
    assert np.array_equal(folds, assign_folds(frame, 5, "random", seed=7))
    assert not np.array_equal(folds, assign_folds(frame, 5, "random", seed=8))
    assert sorted(np.bincount(folds).tolist()) == [20, 20, 21, 21, 21]
    vals = [fold_rows(frame, k, 5, "random", seed=7)[1] for k in range(5)]
    assert np.array_equal(np.sort(np.concatenate(vals)), np.arange(103))  # each row validates exactly once
    for k, val in enumerate(vals):
        train, _ = fold_rows(frame, k, 5, "random", seed=7)
        assert np.intersect1d(train, val).size == 0 and len(train) + len(val) == 103


def test_time_folds_are_contiguous_date_ranges_in_order_and_never_split_a_day():
    days = [d for d in range(14) for _ in range(5 + d % 3)]  # 14 days, 5 to 7 rows each
    frame = _dated(days, undated=4)
    assigned = assign_folds(frame, 4, "time")
    day = row_days(frame)
    ranges = [(day[assigned == k].min(), day[assigned == k].max()) for k in range(4)]
    assert all(ranges[k][1] < ranges[k + 1][0] for k in range(3))  # fold k ends before fold k+1 starts
    assert np.isneginf(ranges[0][0])  # the undated rows count as the oldest
    for value in np.unique(day):
        assert len(set(assigned[day == value].tolist())) == 1  # a day is never split
    assert np.bincount(assigned).min() >= len(frame) // 4 - 7  # balanced to within one day


@pytest.mark.parametrize("gap_days", [0, 1, 3])
def test_time_folds_leave_the_gap_days_before_each_validation_fold_out_of_training(gap_days):
    frame = _dated([d for d in range(12) for _ in range(6)])
    day = row_days(frame)
    covered = []
    for k in range(3):
        train, val = fold_rows(frame, k, 3, "time", gap_days=gap_days)
        start = day[val].min()
        gap = np.flatnonzero((day >= start - gap_days) & (day < start))
        assert len(gap) == 6 * min(gap_days, int(start - day.min()))  # whole days, none before the first date
        assert np.intersect1d(train, gap).size == 0 and np.intersect1d(val, gap).size == 0
        rest = np.setdiff1d(np.arange(len(frame)), np.concatenate([val, gap]))
        assert np.array_equal(train, rest)  # everything else trains, the days after the fold included
        covered.append(val)
    assert np.array_equal(np.sort(np.concatenate(covered)), np.arange(len(frame)))


def test_bad_fold_settings_are_clear_errors():
    frame = _dated([0, 0, 1, 1, 2, 2])
    with pytest.raises(ValueError, match="cv.gap_days=2 needs cv.split=time"):
        fold_rows(frame, 0, 3, "random", gap_days=2)
    with pytest.raises(ValueError, match="cannot cut 3 distinct activation dates"):
        assign_folds(frame, 4, "time")
    with pytest.raises(ValueError, match="cv.folds must be an integer >= 2"):
        assign_folds(frame, 1)
    with pytest.raises(ValueError, match="cv.split must be one of"):
        assign_folds(frame, 2, "month")
    with pytest.raises(ValueError, match=r"fold must be in \[0, 3\)"):
        fold_rows(frame, 3, 3)


def test_a_fold_datamodule_validates_on_its_fold_and_fits_on_the_other_folds(tiny_data):
    def module(fold: int) -> DemandDataModule:
        dm = DemandDataModule(str(tiny_data), fold=fold, folds=3, seed=4, num_workers=0, batch_size=16)
        dm.setup("fit")
        return dm

    frame = schema.read_table(tiny_data / "train.csv", require_target=True)
    one = module(1)
    train, val = fold_rows(frame, 1, 3, "random", seed=4)
    assert np.array_equal(one.val_set.rows, val) and np.array_equal(one.train_set.rows, train)
    assert one.tabular.state_dict() == TabularPreprocessor().fit(frame.iloc[train]).state_dict()  # not on fold 1
    state = one.state_dict()
    assert state["fitted_on"]["fold"] == 1 and state["fitted_on"]["folds"] == 3
    one.check_same_fit(state)
    with pytest.raises(schema.DataError, match="cross-validation fold"):
        one.check_same_fit({**state, "fitted_on": {**state["fitted_on"], "fold": 2}})
    with pytest.raises(schema.DataError, match="was fitted on another train split"):
        module(2).check_same_fit(state)  # another fold's checkpoint is refused (resume, best-checkpoint reload)
