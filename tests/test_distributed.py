"""DDP on CPU (gloo) with 3 processes, launched from another directory; sweeps with DDP; bf16 on CPU."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from demandnet.data.schema import read_table
from demandnet.data.split import split_rows
from tests.conftest import FAST, ROOT, run_cli, train

pytestmark = pytest.mark.slow


def _predict(ckpt, input_csv, output_csv, *extra, cwd=ROOT):
    return run_cli(["-m", "demandnet.predict", f"ckpt_path={ckpt}", f"input_csv={input_csv}",
                    f"output_csv={output_csv}", *extra], cwd=cwd)  # fmt: skip


def test_three_processes_from_another_directory(tiny_data, tmp_path):
    """11 validation rows in batches of 4 on 3 processes (a padding sampler would count rows twice); relative
    paths resolve against the launch directory and every output goes into the one run directory."""
    launch = tmp_path / "launch"
    launch.mkdir()
    (launch / "mydata").symlink_to(tiny_data)
    root_before = sorted(p.name for p in ROOT.iterdir())
    run_cli([str(ROOT / "train.py"), "data=avito", "data.root=mydata", "hydra.run.dir=runs/r", *FAST,
             "model/image=none", "trainer=ddp", "trainer.devices=3", "data.val_fraction=0.0458",
             "data.eval_batch_size=4", "data.seed=5"], cwd=launch)  # fmt: skip
    run = launch / "runs" / "r"
    assert sorted(p.name for p in launch.iterdir()) == ["mydata", "runs"]
    assert sorted(p.name for p in (launch / "runs").iterdir()) == ["r"]
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == ["best.ckpt", "last.ckpt"]
    assert sorted(p.name for p in run.glob("**/submission.csv")) == ["submission.csv"]
    assert sorted(p.name for p in ROOT.iterdir()) == root_before  # nothing written beside the code
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["n_val"] == 11 and metrics["best_checkpoint"] == str(run.resolve() / "checkpoints/best.ckpt")

    frame = read_table(tiny_data / "train.csv", require_target=True)
    _, val_rows = split_rows(frame, 0.0458, "random", seed=5)
    frame.iloc[val_rows].to_csv(launch / "val.csv", index=False)
    _predict(run / "checkpoints/best.ckpt", "val.csv", "val_pred.csv", cwd=launch)
    predicted = pd.read_csv(launch / "val_pred.csv")
    offline = np.sqrt(np.mean((predicted.deal_probability - frame.deal_probability.iloc[val_rows].to_numpy()) ** 2))
    assert metrics["val_rmse"] == pytest.approx(offline, abs=2e-5)

    frame.head(101).to_csv(tmp_path / "rows101.csv", index=False)
    _predict(run / "checkpoints/best.ckpt", tmp_path / "rows101.csv", tmp_path / "one.csv", "batch_size=8")
    _predict(run / "checkpoints/best.ckpt", tmp_path / "rows101.csv", tmp_path / "three.csv", "batch_size=8",
             "trainer.devices=3")  # fmt: skip
    one, three = pd.read_csv(tmp_path / "one.csv"), pd.read_csv(tmp_path / "three.csv")
    assert len(three) == 101 and three.item_id.tolist() == frame.item_id.head(101).tolist()
    assert np.abs(one.deal_probability - three.deal_probability).max() <= 1e-5
    assert sorted(p.name for p in tmp_path.glob("*.csv")) == ["one.csv", "rows101.csv", "three.csv"]
    # fewer rows than processes: one process predicts nothing, the file still holds every row once
    frame.head(2).to_csv(tmp_path / "rows2.csv", index=False)
    _predict(run / "checkpoints/best.ckpt", tmp_path / "rows2.csv", tmp_path / "two.csv", "trainer.devices=3")
    two = pd.read_csv(tmp_path / "two.csv")
    assert two.item_id.tolist() == frame.item_id.head(2).tolist()
    assert np.abs(two.deal_probability.to_numpy() - one.deal_probability.head(2).to_numpy()).max() <= 1e-5


def test_a_sweep_with_ddp_is_refused_at_once(tiny_data, tmp_path):
    args = [str(ROOT / "train.py"), "--multirun", "model.optimizer.lr=0.001,0.002", "trainer=ddp", "trainer.devices=2",
            "data=avito", f"data.root={tiny_data}", f"hydra.sweep.dir={tmp_path / 'sweep'}", *FAST]  # fmt: skip
    done = subprocess.run([sys.executable, *args], check=False, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode != 0
    assert "cannot run inside a hydra --multirun sweep" in done.stdout + done.stderr
    assert not list(tmp_path.glob("sweep/*/checkpoints"))  # refused before any training


@pytest.mark.parametrize("loss", ["mse", "bce"])
def test_bf16_mixed_precision_trains_on_cpu(tiny_data, tmp_path, loss):
    run = tmp_path / "run"
    train(run, "trainer.precision=bf16-mixed", f"model.loss={loss}", data=tiny_data)
    metrics = json.loads((run / "metrics.json").read_text())
    assert np.isfinite([metrics["val_rmse"], metrics["val_loss"]]).all()
    assert pd.read_csv(run / "submission.csv").deal_probability.between(0, 1).all()
