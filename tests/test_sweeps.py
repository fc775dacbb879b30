"""Hydra sweeps: --multirun with the basic sweeper, hparams_search=optuna, and the best-of-sweep files."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
import yaml

from demandnet.sweep import write_sweep_results
from tests.conftest import FAST, ROOT, run_cli

TINY = [*FAST, "model/image=none", "model/text=none"]


def _job(sweep: Path, name: str, val_rmse: float | None, *overrides: str) -> None:
    job = sweep / name
    (job / ".hydra").mkdir(parents=True)
    metrics = {"val_rmse": val_rmse, "n_train": 10, "n_val": 2, "epochs": 1, "wall_seconds": 1.0}
    (job / "metrics.json").write_text(json.dumps(metrics))
    (job / ".hydra" / "overrides.yaml").write_text(yaml.safe_dump(list(overrides)))


def test_sweep_results_name_the_best_job_and_only_the_swept_parameters(tmp_path):
    for num, (lr, rmse) in enumerate([(0.1, 0.30), (0.01, 0.25), (0.001, 0.27)] * 4):  # jobs 0..11
        _job(tmp_path, str(num), rmse + num * 1e-4, "data=avito", f"model.optimizer.lr={lr}", "data.batch_size=64")
    best = write_sweep_results(tmp_path)
    assert best["best_job"] == "1" and best["best_value"] == pytest.approx(0.2501)
    assert best["best_params"] == {"model.optimizer.lr": 0.01}  # typed as YAML reads it, fixed overrides left out
    assert json.loads((tmp_path / "best.json").read_text()) == best
    rows = list(csv.DictReader((tmp_path / "sweep_results.csv").open()))
    assert [row["job"] for row in rows] == [str(n) for n in range(12)]  # job 10 after 9
    assert float(rows[1]["val_rmse"]) == pytest.approx(0.2501) and "model.optimizer.lr=0.01" in rows[1]["overrides"]


def test_a_sweep_without_results_writes_nothing(tmp_path):
    _job(tmp_path, "0", None, "model.optimizer.lr=0.1")
    assert write_sweep_results(tmp_path) is None
    assert not (tmp_path / "best.json").exists()


def _jobs(sweep: Path) -> dict[Path, dict]:
    return {path.parent: json.loads(path.read_text()) for path in sweep.glob("*/metrics.json")}


@pytest.mark.slow
def test_multirun_gives_each_job_its_own_run_dir_and_writes_the_best(tiny_data, tmp_path):
    sweep = tmp_path / "sweep"
    run_cli([str(ROOT / "train.py"), "--multirun", f"hydra.sweep.dir={sweep}", "data=avito", f"data.root={tiny_data}",
             *TINY, "model.optimizer.lr=1e-3,3e-2", "logger=wandb"])  # fmt: skip
    jobs = _jobs(sweep)
    assert sorted(p.name for p in jobs) == ["0", "1"]
    for job_dir, metrics in jobs.items():
        assert (job_dir / "submission.csv").is_file() and (job_dir / "checkpoints" / "best.ckpt").is_file()
        assert Path(metrics["best_checkpoint"]).parent.parent == job_dir.resolve()
        assert len(list((job_dir / "wandb").glob("offline-run-*"))) == 1  # a W&B run per job, not one shared
    best = json.loads((sweep / "best.json").read_text())
    assert best["best_value"] == min(m["val_rmse"] for m in jobs.values())
    assert best["best_params"]["model.optimizer.lr"] in (1e-3, 3e-2) and best["n_jobs"] == 2
    assert jobs[sweep / best["best_job"]]["val_rmse"] == best["best_value"]


@pytest.mark.slow
def test_optuna_sweep_writes_its_best_trial_into_the_sweep_dir(tiny_data, tmp_path):
    sweep = tmp_path / "optuna"
    run_cli([str(ROOT / "train.py"), "hparams_search=optuna", "hydra.sweeper.n_trials=2", f"hydra.sweep.dir={sweep}",
             "data=avito", f"data.root={tiny_data}", *[o for o in TINY if not o.startswith("data.batch_size=")]])  # fmt: skip
    jobs = _jobs(sweep)
    assert len(jobs) == 2
    results = yaml.safe_load((sweep / "optimization_results.yaml").read_text())
    assert results["best_value"] == pytest.approx(min(m["val_rmse"] for m in jobs.values()), abs=1e-7)
    searched = {"model.optimizer.lr", "model.optimizer.weight_decay", "model.fusion.dropout", "data.batch_size"}
    assert set(results["best_params"]) == searched
    best = json.loads((sweep / "best.json").read_text())
    assert best["best_value"] == pytest.approx(results["best_value"], abs=1e-7)
    assert best["best_params"] == pytest.approx(results["best_params"])
