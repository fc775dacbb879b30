"""Fit/transform of the table fields: categorical maps with an unknown bucket, numeric features standardised on train.

All fitted state is plain dicts and lists, so it travels inside the checkpoint.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from demandnet.data import schema

MISSING = "__missing__"
WEEKDAY = "weekday"
NUMERIC_FEATURES = [
    "log_price", "price_missing", "price_rel_category", "log_item_seq", "item_seq_missing",
    "log_title_chars", "log_description_chars", "description_missing", "image_missing",
]  # fmt: skip
_PRICE_CAP = 1e12  # beyond any real ad; keeps log1p finite for absurd values


class TabularPreprocessor:
    """Maps categorical columns to indices (0 = unknown or rare) and builds standardised numeric features."""

    def __init__(self, min_count: int = 1, user_id_min_count: int = 5) -> None:
        self.min_count = min_count
        self.user_id_min_count = user_id_min_count
        self.state: dict | None = None

    @property
    def columns(self) -> list[str]:
        return [*schema.CATEGORICAL, WEEKDAY]

    def fit(self, frame: pd.DataFrame) -> TabularPreprocessor:
        categories = {}
        for column in self.columns:
            counts = _categorical_values(frame, column).value_counts(sort=False)
            floor = self.user_id_min_count if column == "user_id" else self.min_count
            kept = counts[counts >= floor]
            # Most frequent first, ties by value, so the same data always gives the same indices.
            order = sorted(kept.items(), key=lambda kv: (-kv[1], kv[0]))
            categories[column] = [value for value, _ in order]
        raw = _raw_numeric(frame)
        log_price = raw["log_price"]
        by_category = pd.Series(log_price).groupby(frame["category_name"].fillna(MISSING).to_numpy()).median()
        self.state = {
            "categories": categories,
            "category_log_price": {str(k): float(v) for k, v in by_category.dropna().items()},
            "global_log_price": float(np.nanmedian(log_price)) if np.isfinite(log_price).any() else 0.0,
        }
        features = self._numeric(frame, raw)
        self.state["mean"] = [float(v) if np.isfinite(v) else 0.0 for v in np.nanmean(features, axis=0)]
        std = np.nanstd(features, axis=0)
        self.state["std"] = [float(v) if np.isfinite(v) and v > 1e-8 else 1.0 for v in std]
        return self

    def transform(self, frame: pd.DataFrame) -> dict[str, np.ndarray]:
        """Returns {"categorical": (N, C) int64, "numeric": (N, F) float32}."""
        state = self._fitted()
        codes = np.zeros((len(frame), len(self.columns)), dtype=np.int64)
        for j, column in enumerate(self.columns):
            lookup = {value: i + 1 for i, value in enumerate(state["categories"][column])}
            codes[:, j] = _categorical_values(frame, column).map(lookup).fillna(0).to_numpy(dtype=np.int64)
        features = self._numeric(frame, _raw_numeric(frame))
        mean, std = np.asarray(state["mean"]), np.asarray(state["std"])
        features = np.where(np.isnan(features), mean, features)  # a missing value becomes 0 after scaling
        numeric = ((features - mean) / std).astype(np.float32)
        return {"categorical": codes, "numeric": numeric}

    def cardinalities(self) -> list[int]:
        """Embedding table sizes, one per categorical column (index 0 is the unknown bucket)."""
        return [len(self._fitted()["categories"][c]) + 1 for c in self.columns]

    def model_dims(self) -> dict:
        return {"cardinalities": self.cardinalities(), "num_numeric": len(NUMERIC_FEATURES)}

    def state_dict(self) -> dict:
        return {"min_count": self.min_count, "user_id_min_count": self.user_id_min_count, **self._fitted()}

    def load_state_dict(self, state: dict) -> None:
        state = dict(state)
        self.min_count = state.pop("min_count")
        self.user_id_min_count = state.pop("user_id_min_count")
        self.state = state

    def _fitted(self) -> dict:
        if self.state is None:
            raise RuntimeError("TabularPreprocessor is not fitted: call fit() on the train split first")
        return self.state

    def _numeric(self, frame: pd.DataFrame, raw: dict[str, np.ndarray]) -> np.ndarray:
        state = self._fitted()
        medians = state["category_log_price"]
        reference = frame["category_name"].map(medians).astype("float64").fillna(state["global_log_price"])
        columns = dict(raw, price_rel_category=raw["log_price"] - reference.to_numpy())
        return np.stack([columns[name] for name in NUMERIC_FEATURES], axis=1)


def _categorical_values(frame: pd.DataFrame, column: str) -> pd.Series:
    """One column as strings, missing as its own value; image_top_1 codes as integers; weekday from the date."""
    if column == WEEKDAY:
        dates = schema.parse_dates(frame[schema.DATE])
        return dates.dt.weekday.astype("Int64").astype("string").fillna(MISSING)
    values = frame[column]
    if column == "image_top_1":
        values = pd.to_numeric(values, errors="coerce").round().astype("Int64")
    return values.astype("string").str.strip().fillna(MISSING).replace("", MISSING)


def _raw_numeric(frame: pd.DataFrame) -> dict[str, np.ndarray]:
    """Unscaled features; NaN marks a value to be filled with the train mean."""
    price = frame["price"].to_numpy(dtype="float64", na_value=np.nan)
    price = np.where(np.isfinite(price) & (price >= 0), np.minimum(price, _PRICE_CAP), np.nan)
    seq = frame["item_seq_number"].to_numpy(dtype="float64", na_value=np.nan)
    seq = np.where(np.isfinite(seq) & (seq >= 0), np.minimum(seq, _PRICE_CAP), np.nan)
    title = frame["title"].fillna("").astype("string").str.len().to_numpy(dtype="float64", na_value=0.0)
    description = frame["description"].astype("string")
    image = frame[schema.IMAGE].astype("string").str.strip().fillna("")
    return {
        "log_price": np.log1p(price),
        "price_missing": np.isnan(price).astype("float64"),
        "log_item_seq": np.log1p(seq),
        "item_seq_missing": np.isnan(seq).astype("float64"),
        "log_title_chars": np.log1p(title),
        "log_description_chars": np.log1p(description.fillna("").str.len().to_numpy(dtype="float64", na_value=0.0)),
        "description_missing": description.isna().to_numpy(dtype="float64", na_value=1.0),
        "image_missing": (image == "").to_numpy(dtype="float64", na_value=1.0),
    }
