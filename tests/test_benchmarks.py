"""The benchmark code keeps working (figures themselves are measured by benchmarks/run.py, never asserted here)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from benchmarks.lightgbm_baseline import rmse_lightgbm
from demandnet.data.datamodule import DemandDataModule
from tests.conftest import train


def test_the_lightgbm_baseline_scores_demandnets_validation_split(tiny_data: Path) -> None:
    result = rmse_lightgbm(tiny_data, val_fraction=0.15, seed=42)
    datamodule = DemandDataModule(root=str(tiny_data), num_workers=0, val_fraction=0.15, seed=42)
    datamodule.setup("fit")
    assert result["n_val"] == len(datamodule.val_set)
    assert np.isfinite(result["rmse_lightgbm"]) and 0 < result["rmse_lightgbm"] < 0.6


@pytest.mark.slow
def test_the_data_wait_callback_reports_its_shares(tiny_data: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    train(run, "model/image=none", "trainer.max_epochs=4", "data.batch_size=8",
          "+callbacks.data_wait._target_=benchmarks.data_wait.DataWait", data=tiny_data)  # fmt: skip
    report = json.loads((run / "data_wait.json").read_text())
    assert report["steps_measured"] > 50  # 4 epochs of 26 batches, 20 warm-up steps
    assert 0 <= report["data_wait_share"] < 1 and report["samples_per_s"] > 0


def test_the_results_table_judges_each_goal() -> None:
    from benchmarks.run import markdown

    results = {
        "pipeline": {"pipeline_efficiency": 0.9, "pipeline_efficiency_decoding": 0.7, "seconds": 3.0},
        "scale": {"scale_rows": 150_000, "scale_prep_seconds": 9.0, "scale_worker_rss_mb_growth": 0.0},
        "accuracy": {
            "accuracy_20000": {
                "rmse_demandnet": 0.25,
                "rmse_lightgbm": 0.24,
                "no_text_rmse_increase": 0.01,
                "gap_to_noise_floor": 0.04,
            }
        },
    }
    rows = {line.split(" | ")[0].strip("| `"): line for line in markdown(results).splitlines()[2:]}
    assert rows["pipeline_efficiency"].endswith("| met |")
    assert rows["pipeline_efficiency_decoding"].endswith("| NOT met |")
    assert rows["scale_prep_seconds"].endswith("(not at 1.5M rows) |")  # a goal set for 1.5M rows only
    assert rows["scale_worker_rss_mb_growth"].endswith("| met |")
    assert rows["rmse_demandnet [20000]"].endswith("| NOT met |") and "0.2400" in rows["rmse_demandnet [20000]"]
    assert rows["no_text_rmse_increase [20000]"].endswith("| met |")
    assert rows["gap_to_noise_floor [20000]"].endswith("| met |")
    assert "seconds" not in rows
