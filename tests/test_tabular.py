"""Tabular preprocessing: fit on train only, unknown buckets, finite standardised features, plain state."""

import io

import numpy as np
import pandas as pd
import pytest
import torch

from demandnet.data import schema
from demandnet.data.split import split_rows
from demandnet.data.tabular import NUMERIC_FEATURES, TabularPreprocessor


def _frame(n: int = 50, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({c: pd.array([pd.NA] * n, dtype="string") for c in schema.COLUMNS})
    frame["item_id"] = [f"i{i}" for i in range(n)]
    frame["user_id"] = rng.choice(["u1", "u2", "u3"], n)
    frame["region"] = rng.choice(["Самарская область", "Пермский край"], n)
    frame["city"] = rng.choice(["Самара", "Пермь"], n)
    frame["parent_category_name"] = "Личные вещи"
    frame["category_name"] = rng.choice(["Одежда, обувь, аксессуары", "Детская одежда и обувь"], n)
    frame["title"] = "Платье"
    frame["user_type"] = rng.choice(["Private", "Company"], n)
    frame["activation_date"] = "2017-03-20"
    frame["price"] = rng.lognormal(7, 1, n)
    frame["item_seq_number"] = rng.integers(1, 100, n).astype(float)
    frame["image_top_1"] = np.nan
    return frame


def test_unknown_categories_and_odd_numbers_are_handled():
    train = _frame()
    test = _frame(4, seed=1)
    test["city"] = ["Новый город", "Самара", "Самара", "Самара"]
    test["price"] = [np.nan, -5.0, np.inf, 1e30]
    test["item_seq_number"] = [0.0, np.nan, -1.0, 1e20]
    test["activation_date"] = ["not a date", "2017-04-12", "", "2017-04-13"]
    pre = TabularPreprocessor().fit(train)
    out = pre.transform(test)
    city = pre.columns.index("city")
    assert out["categorical"][0, city] == 0 and out["categorical"][1, city] > 0
    assert out["categorical"].dtype == np.int64 and out["numeric"].dtype == np.float32
    assert out["numeric"].shape == (4, len(NUMERIC_FEATURES))
    assert np.isfinite(out["numeric"]).all()
    missing = NUMERIC_FEATURES.index("price_missing")
    assert out["numeric"][0, missing] > out["numeric"][3, missing]  # NaN price flagged, huge price kept


def test_fit_uses_only_given_rows_and_standardises():
    train = _frame(200)
    pre = TabularPreprocessor().fit(train)
    out = pre.transform(train)["numeric"]
    varying = out.std(axis=0) > 0
    assert np.allclose(out.mean(axis=0), 0, atol=1e-5)
    assert np.allclose(out.std(axis=0)[varying], 1, atol=1e-3)


def test_constant_column_does_not_divide_by_zero():
    train = _frame()
    train["price"] = 100.0
    out = TabularPreprocessor().fit(train).transform(train)["numeric"]
    assert np.isfinite(out).all()


def test_rare_users_share_the_unknown_bucket():
    train = _frame(30)
    train["user_id"] = ["heavy"] * 25 + [f"once{i}" for i in range(5)]
    pre = TabularPreprocessor(user_id_min_count=5).fit(train)
    codes = pre.transform(train)["categorical"][:, pre.columns.index("user_id")]
    assert (codes[:25] == 1).all() and (codes[25:] == 0).all()
    assert pre.cardinalities()[pre.columns.index("user_id")] == 2


def test_state_round_trip_through_weights_only_load():
    train, test = _frame(), _frame(10, seed=3)
    pre = TabularPreprocessor().fit(train)
    buffer = io.BytesIO()
    torch.save(pre.state_dict(), buffer)
    buffer.seek(0)
    again = TabularPreprocessor()
    again.load_state_dict(torch.load(buffer, weights_only=True))
    a, b = pre.transform(test), again.transform(test)
    assert np.array_equal(a["categorical"], b["categorical"]) and np.array_equal(a["numeric"], b["numeric"])


def test_transform_before_fit_is_a_clear_error():
    with pytest.raises(RuntimeError, match="not fitted"):
        TabularPreprocessor().transform(_frame())


def test_split_random_and_time():
    frame = _frame(40)
    frame["activation_date"] = [f"2017-03-{15 + i % 10:02d}" for i in range(40)]
    train, val = split_rows(frame, 0.25, "random", seed=0)
    assert len(val) == 10 and len(np.intersect1d(train, val)) == 0 and len(train) + len(val) == 40
    assert np.array_equal(split_rows(frame, 0.25, "random", seed=0)[1], val)
    train, val = split_rows(frame, 0.25, "time", seed=0)
    dates = frame["activation_date"]
    assert dates.iloc[val].min() >= dates.iloc[train].max()
    with pytest.raises(ValueError, match="split"):
        split_rows(frame, 0.25, "weekly", seed=0)
