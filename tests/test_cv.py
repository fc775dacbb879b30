"""`python train.py cv.folds=K`: out-of-fold predictions, per-fold checkpoints, a fold-averaged submission; DDP."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from omegaconf import OmegaConf

from demandnet import predict
from demandnet.data.schema import read_table
from tests.conftest import train

pytestmark = pytest.mark.slow
# The table branch alone keeps three folds quick; the folds' logic does not depend on the branches. Batches of 16
# give 10 optimizer steps per fold (OneCycleLR needs more than 1 / pct_start).
TABLE_ONLY = ("model/image=none", "model/text=none", "data.batch_size=16")


def _predict(ckpt: Path, rows: pd.DataFrame, tmp: Path, name: str) -> pd.DataFrame:
    """demandnet.predict on these rows, in this process."""
    rows.to_csv(tmp / f"{name}.csv", index=False)
    cfg = OmegaConf.merge(OmegaConf.structured(predict.PredictConfig), {
        "ckpt_path": str(ckpt), "input_csv": str(tmp / f"{name}.csv"), "output_csv": str(tmp / f"{name}_out.csv"),
        "num_workers": 0})  # fmt: skip
    predict.run(cfg)
    return pd.read_csv(tmp / f"{name}_out.csv")


def _check_oof(run: Path, data: Path, folds: int) -> tuple[pd.DataFrame, dict]:
    """oof.csv holds every train row once, in train.csv order, each fold non-empty; cv_metrics agrees with it."""
    frame = read_table(data / "train.csv", require_target=True)
    oof = pd.read_csv(run / "oof.csv", dtype={"item_id": str})
    assert oof.columns.tolist() == ["item_id", "fold", "prediction", "target"]
    assert oof.item_id.tolist() == frame.item_id.tolist()  # every row exactly once, none duplicated or lost
    assert sorted(oof.fold.unique().tolist()) == list(range(folds))
    assert np.allclose(oof.target, frame.deal_probability, atol=1e-6) and oof.prediction.between(0, 1).all()
    metrics = json.loads((run / "cv_metrics.json").read_text())
    assert metrics["oof_rmse"] == pytest.approx(np.sqrt(np.mean((oof.prediction - oof.target) ** 2)), abs=1e-9)
    assert [m["n_val"] for m in metrics["per_fold"]] == np.bincount(oof.fold).tolist()
    assert metrics["n_oof"] == len(frame) and metrics["folds"] == folds
    scores = [m["val_rmse"] for m in metrics["per_fold"]]
    assert metrics["mean_val_rmse"] == pytest.approx(np.mean(scores)) and metrics["std_val_rmse"] > 0
    assert 0 < metrics["noise_floor_rmse"] < metrics["train_mean_rmse"]
    for k, fold in oof.groupby("fold"):  # a fold's logged val_rmse is the RMSE of its out-of-fold rows
        assert metrics["per_fold"][k]["val_rmse"] == pytest.approx(
            np.sqrt(np.mean((fold.prediction - fold.target) ** 2)), abs=2e-6
        )
    return oof, metrics


def test_three_random_folds_give_out_of_fold_predictions_and_a_mean_submission(tiny_data, tmp_path):
    run = tmp_path / "run"
    train(run, "cv.folds=3", *TABLE_ONLY, data=tiny_data)
    oof, metrics = _check_oof(run, tiny_data, 3)
    frame = read_table(tiny_data / "train.csv", require_target=True)
    test = pd.read_csv(tiny_data / "test.csv")
    fold_predictions = []
    for k in range(3):
        fold_dir = run / "folds" / f"fold_{k}"
        ckpt = fold_dir / "checkpoints" / "best.ckpt"
        assert json.loads((fold_dir / "metrics.json").read_text())["n_val"] == (oof.fold == k).sum()
        assert metrics["per_fold"][k]["best_checkpoint"] == str(ckpt.resolve())
        # the fold's model predicts its validation rows as oof.csv has them, and it never trained on them
        mine = oof.fold.to_numpy() == k
        again = _predict(ckpt, frame[mine], tmp_path, f"val{k}")
        assert np.abs(again.deal_probability.to_numpy() - oof.prediction[mine].to_numpy()).max() <= 1e-6
        fold_predictions.append(_predict(ckpt, test, tmp_path, f"test{k}").deal_probability.to_numpy())
    submission = pd.read_csv(run / "submission.csv")
    assert submission.item_id.tolist() == test.item_id.tolist()
    assert np.abs(submission.deal_probability.to_numpy() - np.mean(fold_predictions, axis=0)).max() <= 1e-6
    assert not np.allclose(fold_predictions[0], fold_predictions[1], atol=1e-4)  # three different models


def test_ddp_two_processes_two_time_folds(tiny_data, tmp_path):
    """Both processes run each fold; oof.csv still has every row once and matches each fold's checkpoint."""
    run = tmp_path / "run"
    train(run, "cv.folds=2", "cv.split=time", "cv.gap_days=1", "trainer=ddp", "trainer.devices=2",
          "data.eval_batch_size=7", *TABLE_ONLY, data=tiny_data)  # fmt: skip
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]
    assert sorted(p.name for p in (run / "folds").iterdir()) == ["fold_0", "fold_1"]
    oof, metrics = _check_oof(run, tiny_data, 2)
    frame = read_table(tiny_data / "train.csv", require_target=True)
    dates = pd.to_datetime(frame.activation_date)
    assert dates[oof.fold == 0].max() < dates[oof.fold == 1].min()  # fold 1 validates on the later dates
    assert metrics["split"] == "time" and metrics["gap_days"] == 1
    gap = ((dates >= dates[oof.fold == 1].min() - pd.Timedelta(days=1)) & (oof.fold == 0)).sum()
    assert metrics["per_fold"][1]["n_train"] == (oof.fold == 0).sum() - gap > 0  # the day before fold 1 left out
    for k in range(2):
        mine = oof.fold.to_numpy() == k
        again = _predict(run / "folds" / f"fold_{k}" / "checkpoints" / "best.ckpt", frame[mine], tmp_path, f"v{k}")
        assert np.abs(again.deal_probability.to_numpy() - oof.prediction[mine].to_numpy()).max() <= 1e-5
