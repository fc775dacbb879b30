"""The classic Kaggle baseline for Avito demand: LightGBM on TF-IDF of title and description plus the categorical
and numeric columns, trained on demandnet's own train/validation split of the same file.

    python -m benchmarks.lightgbm_baseline DATA_ROOT [--val-fraction 0.15] [--seed 42]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import lightgbm as lgb
import numpy as np
import pandas as pd
import scipy.sparse as sp
from sklearn.feature_extraction.text import TfidfVectorizer

from demandnet.data import schema
from demandnet.data.split import split_rows

PARAMS = {"objective": "regression", "metric": "rmse", "learning_rate": 0.05, "num_leaves": 63,
          "feature_fraction": 0.5, "bagging_fraction": 0.8, "bagging_freq": 1, "min_data_in_leaf": 20,
          "verbose": -1, "num_threads": 2, "seed": 0}  # fmt: skip
CATEGORICAL = ["region", "city", "parent_category_name", "category_name", "param_1", "param_2", "param_3",
               "user_type", "image_top_1", "weekday"]  # fmt: skip


def _table(frame: pd.DataFrame) -> pd.DataFrame:
    out = pd.DataFrame(index=frame.index)
    out["weekday"] = schema.parse_dates(frame[schema.DATE]).dt.weekday
    for column in CATEGORICAL[:-1]:
        out[column] = frame[column].astype("string").fillna("NA")
    for column in CATEGORICAL:
        out[column] = out[column].astype("category").cat.codes  # same codes for train and val: one frame
    out["log_price"] = np.log1p(pd.to_numeric(frame["price"], errors="coerce").clip(lower=0))
    out["item_seq_number"] = pd.to_numeric(frame["item_seq_number"], errors="coerce")
    out["has_image"] = frame[schema.IMAGE].notna().astype(int)
    out["description_len"] = frame["description"].fillna("").str.len()
    out["title_len"] = frame["title"].fillna("").str.len()
    return out


def rmse_lightgbm(root: str | Path, val_fraction: float = 0.15, seed: int = 42) -> dict:
    frame = schema.read_table(Path(root) / "train.csv", require_target=True)
    train_rows, val_rows = split_rows(frame, val_fraction, "random", seed)
    table = _table(frame)
    texts = []
    for field, max_features in (("title", 10_000), ("description", 30_000)):
        vectorizer = TfidfVectorizer(max_features=max_features, ngram_range=(1, 2), min_df=2, sublinear_tf=True)
        column = frame[field].fillna("").astype(str)
        vectorizer.fit(column.iloc[train_rows])  # fitted on the train split only
        texts.append(vectorizer.transform(column))
    features = sp.hstack([sp.csr_matrix(table.to_numpy(dtype=np.float32)), *texts]).tocsr()
    names = [*table.columns, *(f"tfidf_{i}" for i in range(features.shape[1] - table.shape[1]))]
    target = frame[schema.TARGET].to_numpy(dtype=np.float64)
    categorical = [names.index(c) for c in CATEGORICAL]
    # Early stopping on an inner slice of the train split: the validation rows stay unseen, as for demandnet.
    inner = np.random.default_rng(seed).random(len(train_rows)) < 0.1
    fit_set = lgb.Dataset(features[train_rows[~inner]], target[train_rows[~inner]], feature_name=names,
                          categorical_feature=categorical)  # fmt: skip
    stop_set = lgb.Dataset(features[train_rows[inner]], target[train_rows[inner]], reference=fit_set)
    booster = lgb.train(PARAMS, fit_set, num_boost_round=3000, valid_sets=[stop_set],
                        callbacks=[lgb.early_stopping(100, verbose=False)])  # fmt: skip
    prediction = np.clip(booster.predict(features[val_rows], num_iteration=booster.best_iteration), 0, 1)
    rmse = float(np.sqrt(np.mean((prediction - target[val_rows]) ** 2)))
    return {"rmse_lightgbm": rmse, "lightgbm_rounds": int(booster.best_iteration), "n_val": len(val_rows)}


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("root")
    parser.add_argument("--val-fraction", type=float, default=0.15)
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args()
    print(json.dumps(rmse_lightgbm(args.root, args.val_fraction, args.seed), indent=2))
