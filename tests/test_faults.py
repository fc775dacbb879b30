"""Faults: a run killed in the middle of an epoch resumes to the result of a run that was never stopped."""

from __future__ import annotations

import json
import signal
import subprocess
import sys

import pandas as pd
import pytest
import torch

from tests.conftest import FAST, FAST_IMAGE, ROOT, train

pytestmark = pytest.mark.slow

# 216 train rows in batches of 32: 7 steps per epoch. A step checkpoint every 3 steps; the crash after step 10
# (epoch 1, its 4th batch) loses step 10, so the resume starts from step 9, two batches into epoch 1.
RESUMABLE = ["trainer.max_epochs=2", "trainer.deterministic=true", "callbacks.step_checkpoint.every_n_train_steps=3",
             "logger.csv.flush_logs_every_n_steps=1"]  # fmt: skip


def _killed_after(step: int, run, data, *overrides: str) -> dict:
    """Train into `run` until the process kills itself after optimizer step `step`; its last checkpoint."""
    crash = ["+callbacks.crash._target_=tests.crash.CrashAfterStep", f"+callbacks.crash.step={step}"]
    args = [str(ROOT / "train.py"), f"hydra.run.dir={run}", "data=avito", f"data.root={data}", *FAST, *overrides,
            *crash]  # fmt: skip
    killed = subprocess.run([sys.executable, *args], check=False, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-3000:]
    assert not (run / "metrics.json").exists()
    return torch.load(run / "checkpoints" / "last.ckpt", weights_only=True)


def test_a_run_killed_mid_epoch_resumes_to_the_same_validation_rmse(tiny_data, tmp_path):
    train(tmp_path / "whole", *RESUMABLE, data=tiny_data)

    run = tmp_path / "killed"
    last = _killed_after(10, run, tiny_data, FAST_IMAGE, *RESUMABLE)
    assert (last["global_step"], last["epoch"]) == (9, 1)  # saved mid-epoch by the step checkpoint

    # The resume also changes the worker count: the batches and their crops must not depend on it.
    train(run, *RESUMABLE, "resume=true", "data.num_workers=2", data=tiny_data)
    whole = json.loads((tmp_path / "whole" / "metrics.json").read_text())
    resumed = json.loads((run / "metrics.json").read_text())
    assert resumed["epochs"] == whole["epochs"] == 2
    assert resumed["val_rmse"] == pytest.approx(whole["val_rmse"], abs=1e-6)
    curves = pd.read_csv(run / "csv" / "metrics.csv")
    assert {0, 1} <= set(curves.epoch) and curves.step.min() < 9  # the killed part's curves are kept


def test_resume_without_a_checkpoint_trains_from_the_start(tiny_data, tmp_path):
    done = train(tmp_path / "run", "resume=true", "model/image=none", "model/text=none", data=tiny_data)
    assert "does not exist: training from the start" in done.stderr + done.stdout
    assert (tmp_path / "run" / "metrics.json").is_file()


def test_a_predict_killed_while_writing_leaves_the_previous_output_intact(tiny_data, tmp_path):
    """SIGKILL after the predictions are written but before they replace the output: the old file stays whole."""
    train(tmp_path / "run", "model/image=none", data=tiny_data)
    output = tmp_path / "submission.csv"
    output.write_text("item_id,deal_probability\nprevious,0.5\n")
    killer = (
        "import os, signal, sys\n"
        "os.fsync = lambda fd: os.kill(os.getpid(), signal.SIGKILL)  # die in the middle of the atomic write\n"
        "from demandnet.predict import main\n"
        "main(sys.argv[1:])\n"
    )
    args = [f"ckpt_path={tmp_path / 'run/checkpoints/best.ckpt'}", f"input_csv={tiny_data / 'test.csv'}",
            f"output_csv={output}"]  # fmt: skip
    done = subprocess.run(
        [sys.executable, "-c", killer, *args], check=False, cwd=ROOT, capture_output=True, timeout=300
    )
    assert done.returncode == -signal.SIGKILL, done.stderr[-2000:]
    assert output.read_text() == "item_id,deal_probability\nprevious,0.5\n"
    leftovers = [p.name for p in tmp_path.iterdir() if p.name.startswith(".submission.csv.")]
    assert len(leftovers) == 1 and leftovers[0].endswith(".tmp")  # the complete new rows, never under the real name


def test_a_row_that_fails_in_a_dataloader_worker_names_its_item_id_and_file(tiny_data):
    from demandnet.data.datamodule import DemandDataModule
    from demandnet.data.images import resolve_image_config

    config = resolve_image_config("test_resnet", 32)
    datamodule = DemandDataModule(root=str(tiny_data), num_workers=1, image_config=config, strict_images=True)
    datamodule.setup("fit")
    dataset = datamodule.val_set
    row = next(r for r in dataset.rows if dataset.images[r])
    photo = tiny_data / "images" / f"{dataset.images[row]}.jpg"
    if not photo.exists():
        photo = tiny_data / "images" / dataset.images[row]
    photo.rename(photo.with_suffix(".moved"))  # the file is gone by the time a worker reads the row
    try:
        with pytest.raises(Exception) as info:
            for _ in datamodule.val_dataloader():
                pass
    finally:
        photo.with_suffix(".moved").rename(photo)
    message = str(info.value)
    assert "DataLoader worker" in message
    assert str(dataset.item_ids[row]) in message and photo.name in message and f"data row {row + 1}" in message


def test_a_checkpoint_trains_on_for_more_epochs_than_it_planned(tiny_data, tmp_path):
    """The OneCycle schedule saved in the checkpoint ends at its old length; training longer keeps the new one."""
    train(tmp_path / "short", "model/image=none", data=tiny_data)  # 1 epoch
    done = train(tmp_path / "longer", "model/image=none", "trainer.max_epochs=3",
                 f"ckpt_path={tmp_path / 'short/checkpoints/last.ckpt'}", data=tiny_data)  # fmt: skip
    assert "continuing on the new schedule" in done.stdout + done.stderr
    assert json.loads((tmp_path / "longer" / "metrics.json").read_text())["epochs"] == 3


def test_a_new_run_refuses_a_run_directory_that_holds_a_run(tiny_data, tmp_path):
    train(tmp_path / "run", "model/image=none", "model/text=none", data=tiny_data)
    before = (tmp_path / "run/checkpoints/best.ckpt").read_bytes()
    args = [str(ROOT / "train.py"), f"hydra.run.dir={tmp_path / 'run'}", "data=avito", f"data.root={tiny_data}", *FAST]
    again = subprocess.run([sys.executable, *args], check=False, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert again.returncode != 0 and "already holds a run" in again.stderr + again.stdout
    assert (tmp_path / "run/checkpoints/best.ckpt").read_bytes() == before


def test_a_ddp_run_killed_mid_epoch_resumes_to_the_same_validation_rmse(tiny_data, tmp_path):
    """2 processes: 108 rows each, 4 steps per epoch; killed after step 7, resumed from step 6 (epoch 1).
    Each process's random state is in the checkpoint, not only rank 0's."""
    ddp = [*RESUMABLE, "model/image=none", "trainer=ddp", "trainer.devices=2"]
    train(tmp_path / "whole", *ddp, data=tiny_data)
    run = tmp_path / "killed"
    last = _killed_after(7, run, tiny_data, *ddp)
    assert (last["global_step"], last["epoch"]) == (6, 1) and len(last["rng_states"]["per_rank"]) == 2
    train(run, *ddp, "resume=true", data=tiny_data)
    whole = json.loads((tmp_path / "whole" / "metrics.json").read_text())
    resumed = json.loads((run / "metrics.json").read_text())
    assert resumed["val_rmse"] == pytest.approx(whole["val_rmse"], abs=1e-6)


def test_a_resume_with_other_data_settings_is_refused_clearly(tiny_data, tmp_path):
    run = tmp_path / "killed"
    _killed_after(10, run, tiny_data, "model/image=none", *RESUMABLE)
    for change, message in [("seed=7", "fitted on another train split or other data"),
                            ("data.batch_size=64", "saved in the middle of an epoch with other batch settings")]:  # fmt: skip
        args = [str(ROOT / "train.py"), f"hydra.run.dir={run}", "data=avito", f"data.root={tiny_data}", *FAST,
                "model/image=none", *RESUMABLE, "resume=true", change]  # fmt: skip
        done = subprocess.run(
            [sys.executable, *args], check=False, cwd=ROOT, capture_output=True, text=True, timeout=300
        )
        assert done.returncode != 0 and message in done.stderr + done.stdout, (change, done.stderr[-2000:])
    assert not (run / "metrics.json").exists()
