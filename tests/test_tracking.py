"""Experiment trackers (conf/logger/), the hyperparameters they get, progress bars and the end-of-run summary."""

from __future__ import annotations

import contextlib
import io
import json
import sys

import numpy as np
import pytest
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate
from pytorch_lightning.callbacks import RichProgressBar

from demandnet import progress as progress_module
from demandnet.summary import summary_table
from demandnet.tracking import run_hyperparameters
from tests.conftest import ROOT, train


def _compose(*overrides: str, output_dir: str = "/tmp/demandnet-compose"):
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        return compose("train", overrides=[f"paths.output_dir={output_dir}", *overrides])


def _walk(value, where=""):
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _walk(item, f"{where}.{key}")
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _walk(item, f"{where}[{index}]")
    else:
        yield where, value


def test_hyperparameters_are_the_whole_resolved_config_in_plain_values():
    cfg = _compose("model.optimizer.lr=0.0007")
    params = run_hyperparameters(cfg, {"dims": {"tabular": {"cardinalities": [3, 4]}}, "target_mean": 0.14})
    assert params["model"]["optimizer"]["lr"] == 0.0007
    assert params["data"]["val_fraction"] == cfg.data.val_fraction and params["seed"] == 42
    assert params["model"]["scheduler"]["max_lr"] == 0.0007  # interpolations resolved
    assert params["data_sizes"] == {"dims": {"tabular": {"cardinalities": [3, 4]}}, "target_mean": 0.14}
    assert all(isinstance(v, (str, int, float, bool, type(None))) for _, v in _walk(params))


def test_a_non_plain_hyperparameter_is_refused_by_name():
    with pytest.raises(TypeError, match=r"data_sizes\.dims\.tabular\.cardinalities.*ndarray"):
        run_hyperparameters(_compose(), {"dims": {"tabular": {"cardinalities": np.array([3, 4])}}})


@pytest.mark.parametrize(("choice", "expected"), [("csv", ["csv"]), ("tensorboard", ["csv", "tensorboard"]),
                                                  ("[mlflow,wandb]", ["csv", "mlflow", "wandb"])])  # fmt: skip
def test_every_tracker_keeps_the_csv_logger_beside_it(choice, expected):
    assert list(_compose(f"logger={choice}").logger) == expected


def test_mlflow_store_is_in_the_run_dir_unless_a_tracking_uri_is_given(tmp_path):
    assert _compose("logger=mlflow", output_dir=str(tmp_path)).logger.mlflow.tracking_uri == (
        f"sqlite:///{tmp_path}/mlflow.db"
    )
    given = _compose("logger=mlflow", "logger.mlflow.tracking_uri=http://mlflow:5000").logger.mlflow
    assert given.tracking_uri == "http://mlflow:5000"


def test_training_shows_lightnings_rich_progress_bar(tmp_path):
    trainer = instantiate(_compose(output_dir=str(tmp_path)).trainer, logger=False)
    assert isinstance(trainer.progress_bar_callback, RichProgressBar)


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.mark.parametrize(("rank", "terminal", "shown"), [("0", True, True), ("0", False, False), ("1", True, False)])
def test_progress_bar_on_rank_zero_in_a_terminal_only(monkeypatch, rank, terminal, shown):
    monkeypatch.delenv("RANK", raising=False)
    monkeypatch.setenv("LOCAL_RANK", rank)
    monkeypatch.setattr(progress_module, "DELAY_S", 0.0)
    stderr = _Terminal() if terminal else io.StringIO()
    monkeypatch.setattr(sys, "stderr", stderr)
    assert progress_module.process_rank() == int(rank)
    assert list(progress_module.progress(range(3), "navec encoding", 3)) == [0, 1, 2]  # the items pass through
    assert ("navec encoding" in stderr.getvalue() and "/3 [" in stderr.getvalue()) == shown


def test_summary_names_every_file_in_full_however_long_the_path():
    deep = "/runs/" + "a-very-long-folder-name/" * 8
    metrics = {"val_rmse": 0.23712, "train_mean_rmse": 0.2603, "noise_floor_rmse": None, "n_train": 6800,
               "n_val": 1200, "n_test": 2000, "epochs": 4, "best_checkpoint": f"{deep}checkpoints/best.ckpt",
               "submission": f"{deep}submission.csv", "wall_seconds": 101.4}  # fmt: skip
    text = summary_table(metrics, deep)
    assert f"{deep}checkpoints/best.ckpt" in text and f"{deep}submission.csv" in text
    assert "0.2371" in text and "0.2603" in text and "n/a" in text and "6,800 / 1,200 / 2,000" in text
    assert "1 min 41 s" in text


@pytest.mark.slow
def test_a_run_with_every_tracker_writes_their_files_in_the_run_dir(tiny_data, tmp_path):
    from mlflow.tracking import MlflowClient
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    run = tmp_path / "run"
    done = train(run, "model/image=none", "model/text=none", "logger=[tensorboard,mlflow,wandb]", data=tiny_data)
    metrics = json.loads((run / "metrics.json").read_text())

    events = sorted((run / "tensorboard").glob("events.out.tfevents.*"))
    scalars, hparams = {"val/rmse": [], "hp/val_rmse": []}, []
    for path in events:
        accumulator = EventAccumulator(str(path))
        accumulator.Reload()
        for tag, values in scalars.items():
            if tag in accumulator.Tags()["scalars"]:
                values += [event.value for event in accumulator.Scalars(tag)]
        with contextlib.suppress(KeyError):  # the event files without an hparams summary
            hparams += list(accumulator.PluginTagToContent("hparams"))
    assert scalars["val/rmse"] and scalars["val/rmse"][-1] == pytest.approx(metrics["val_rmse"], abs=1e-6)
    assert scalars["hp/val_rmse"] == [pytest.approx(metrics["val_rmse"], abs=1e-6)]  # the HPARAMS tab's metric
    assert "_hparams_/session_start_info" in hparams

    client = MlflowClient(tracking_uri=f"sqlite:///{run}/mlflow.db")
    experiment = client.get_experiment_by_name("demandnet")
    (mlflow_run,) = client.search_runs([experiment.experiment_id])
    assert mlflow_run.data.metrics["val/rmse"] == pytest.approx(metrics["val_rmse"], abs=1e-6)
    params = mlflow_run.data.params
    assert params["model/optimizer/lr"] == "0.003" and params["data/root"] == str(tiny_data)
    assert params["trainer/max_epochs"] == "1" and "data_sizes/target_mean" in params

    (offline,) = (run / "wandb").glob("offline-run-*")
    assert list(offline.glob("run-*.wandb"))
    assert (run / "csv" / "metrics.csv").is_file()  # the CSV logger stays on beside the others

    for text in (done.stdout + done.stderr, (run / "train.log").read_text()):
        assert "demandnet run summary" in text
        assert metrics["best_checkpoint"] in text and metrics["submission"] in text
        assert f"{metrics['val_rmse']:.4f}" in text
