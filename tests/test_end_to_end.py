"""train.py -> checkpoint -> demandnet.predict, as a user runs them, on the tiny generated data set."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pandas as pd
import pytest
import torch

from tests.conftest import REAL, run_cli, train

pytestmark = pytest.mark.slow


def _predict(ckpt, input_csv, output_csv, *extra):
    return run_cli(["-m", "demandnet.predict", f"ckpt_path={ckpt}", f"input_csv={input_csv}",
                    f"output_csv={output_csv}", *extra])  # fmt: skip


def test_default_branches_train_checkpoint_and_predict(tiny_data, tmp_path):
    run = tmp_path / "run"
    train(run, data=tiny_data)
    for name in ("checkpoints/best.ckpt", "checkpoints/last.ckpt", "metrics.json", "submission.csv",
                 ".hydra/config.yaml"):  # fmt: skip
        assert (run / name).is_file(), name
    metrics = json.loads((run / "metrics.json").read_text())
    assert np.isfinite(metrics["val_rmse"]) and metrics["n_train"] + metrics["n_val"] == 240
    assert 0 < metrics["noise_floor_rmse"] < metrics["train_mean_rmse"]
    test = pd.read_csv(tiny_data / "test.csv")
    submission = pd.read_csv(run / "submission.csv")
    assert submission.columns.tolist() == ["item_id", "deal_probability"]
    assert submission.item_id.tolist() == test.item_id.tolist()
    assert submission.deal_probability.between(0, 1).all()

    checkpoint = torch.load(run / "checkpoints/best.ckpt", weights_only=True)  # plain types only
    assert checkpoint["hyper_parameters"]["branches"]["image"]["name"]
    out = tmp_path / "predicted.csv"
    _predict(run / "checkpoints/best.ckpt", tiny_data / "test.csv", out)
    predicted = pd.read_csv(out)
    assert predicted.item_id.tolist() == test.item_id.tolist()
    assert np.allclose(predicted.deal_probability, submission.deal_probability, atol=2e-6)


def test_a_model_predicts_another_data_set_in_the_same_schema(tiny_data, tmp_path):
    """Unknown categories, cities and words go to the unknown buckets; photos missing on disk fall back."""
    run = tmp_path / "run"
    train(run, "model/image=none", "model.loss=bce", data=tiny_data)
    other = pd.read_csv(tiny_data / "test.csv").head(7)
    other["city"] = "Город, которого нет"
    other["category_name"] = "Новая категория"
    other.loc[0, "title"] = "совершенно незнакомыеслова zzzz"
    other.loc[1, "description"] = None
    other.to_csv(tmp_path / "other.csv", index=False)
    _predict(run / "checkpoints/last.ckpt", tmp_path / "other.csv", tmp_path / "out.csv")
    out = pd.read_csv(tmp_path / "out.csv")
    assert out.item_id.tolist() == other.item_id.tolist() and out.deal_probability.between(0, 1).all()


def test_transformer_text_branch_checkpoint_is_self_contained(tiny_data, tiny_bert, tmp_path):
    bert = tmp_path / "bert"
    shutil.copytree(tiny_bert, bert)
    run = tmp_path / "run"
    train(run, "model/text=transformer", f"model.text.name_or_path={bert}", "model.text.tokenizer.max_length=32",
          "model/image=none", data=tiny_data)  # fmt: skip
    shutil.rmtree(bert)  # prediction must need nothing but the checkpoint
    _predict(run / "checkpoints/best.ckpt", tiny_data / "test.csv", tmp_path / "out.csv")
    out, submission = pd.read_csv(tmp_path / "out.csv"), pd.read_csv(run / "submission.csv")
    assert np.allclose(out.deal_probability, submission.deal_probability, atol=2e-6)


def test_text_branch_off_trains(tiny_data, tmp_path):
    train(tmp_path / "run", "model/text=none", data=tiny_data)
    assert (tmp_path / "run" / "submission.csv").is_file()


def test_ddp_two_processes_one_run_dir_exact_val_rmse_and_same_predictions(tiny_data, tmp_path):
    run = tmp_path / "run"
    # 37 validation rows with batches of 4 on 2 processes: a padding sampler would count rows twice.
    train(run, "trainer=ddp", "trainer.devices=2", "data.val_fraction=0.15417", "data.eval_batch_size=4",
          "data.seed=5", "model/image=none", data=tiny_data)  # fmt: skip
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == ["best.ckpt", "last.ckpt"]
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["n_val"] == 37
    reported = pd.read_csv(run / "val_predictions.csv")  # the report's rows: each validation row once
    assert len(reported) == reported.item_id.nunique() == 37
    reported_rmse = np.sqrt(np.mean((reported.prediction - reported.target) ** 2))
    assert reported_rmse == pytest.approx(metrics["val_rmse"], abs=2e-5)

    from demandnet.data.schema import read_table
    from demandnet.data.split import split_rows

    frame = read_table(tiny_data / "train.csv", require_target=True)
    _, val_rows = split_rows(frame, 0.15417, "random", seed=5)
    frame.iloc[val_rows].to_csv(tmp_path / "val.csv", index=False)
    _predict(run / "checkpoints/best.ckpt", tmp_path / "val.csv", tmp_path / "one.csv", "batch_size=4")
    _predict(run / "checkpoints/best.ckpt", tmp_path / "val.csv", tmp_path / "two.csv", "batch_size=4",
             "trainer.devices=2")  # fmt: skip
    one, two = pd.read_csv(tmp_path / "one.csv"), pd.read_csv(tmp_path / "two.csv")
    assert one.item_id.tolist() == two.item_id.tolist() == frame.item_id.iloc[val_rows].tolist()
    assert np.abs(one.deal_probability - two.deal_probability).max() <= 1e-5
    offline = np.sqrt(np.mean((one.deal_probability - frame.deal_probability.iloc[val_rows].to_numpy()) ** 2))
    assert metrics["val_rmse"] == pytest.approx(offline, abs=2e-5)


@pytest.mark.skipif(not REAL.is_dir(), reason="the real Avito excerpt (../shared/data/avito-real) is absent")
def test_real_excerpt_end_to_end(tmp_path):
    run = tmp_path / "run"
    train(run, data=REAL)
    submission = pd.read_csv(run / "submission.csv")
    test = pd.read_csv(REAL / "test.csv")
    assert submission.item_id.tolist() == test.item_id.tolist()
    assert submission.deal_probability.between(0, 1).all()


def test_a_model_trained_compiled_predicts_without_compiling(tiny_data, tmp_path):
    run = tmp_path / "run"
    # the eager backend runs torch.compile's graph capture without a C++ toolchain, in seconds
    train(run, "model/image=none", "model.compile=true", "+model.compile_options.backend=eager", data=tiny_data)
    assert "_orig_mod" not in str(torch.load(run / "checkpoints/best.ckpt", weights_only=True)["state_dict"].keys())
    _predict(run / "checkpoints/best.ckpt", tiny_data / "test.csv", tmp_path / "out.csv")
    out, submission = pd.read_csv(tmp_path / "out.csv"), pd.read_csv(run / "submission.csv")
    assert np.allclose(out.deal_probability, submission.deal_probability, atol=2e-6)


def test_debug_fdr_runs_one_batch_through_every_stage(tiny_data, tmp_path):
    run = tmp_path / "run"
    train(run, "debug=fdr", data=tiny_data)
    metrics = json.loads((run / "metrics.json").read_text())
    assert np.isfinite(metrics["val_rmse"]) and metrics["epochs"] == 1
    assert not (run / "submission.csv").exists()  # one batch of predictions is no submission
