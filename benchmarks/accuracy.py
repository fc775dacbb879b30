"""Accuracy side by side on one split of the synthetic data: demandnet (default config), the LightGBM baseline,
the noise floor (RMSE of the true expectation) and the train mean; and demandnet with each branch switched off.

    python -m benchmarks.accuracy [--quick]
"""

from __future__ import annotations

import argparse
import json

from benchmarks.common import WORK, train_cli
from benchmarks.lightgbm_baseline import rmse_lightgbm

ABLATIONS = {"no_image": ["model/image=none"], "no_text": ["model/text=none"], "no_tabular": ["~model/tabular"]}


def at_size(n_train: int, extra: list[str]) -> dict:
    data = [f"data.synthetic.n_train={n_train}", "data.synthetic.n_test=0", "data.test_csv=null", *extra]
    full = train_cli(f"accuracy-{n_train}", *data)
    result = {
        "rmse_demandnet": full["val_rmse"],
        "rmse_noise_floor": full["noise_floor_rmse"],
        "rmse_train_mean": full["train_mean_rmse"],
        "demandnet_train_seconds": full["command_seconds"],
        "n_train": full["n_train"],
        "n_val": full["n_val"],
    }
    root = WORK / "data" / f"synthetic-v1-{n_train}-0-0"
    result.update(rmse_lightgbm(root))  # same file, same split (val_fraction 0.15, seed 42 as in conf/)
    for name, overrides in ABLATIONS.items():
        result[f"rmse_{name}"] = train_cli(f"accuracy-{n_train}-{name}", *data, *overrides)["val_rmse"]
        result[f"{name}_rmse_increase"] = result[f"rmse_{name}"] - result["rmse_demandnet"]
    result["gap_to_noise_floor"] = result["rmse_demandnet"] / result["rmse_noise_floor"] - 1
    return result


def measure(quick: bool = False) -> dict:
    if quick:
        return {"accuracy_2000_2_epochs": at_size(2000, ["trainer.max_epochs=2"])}
    return {"accuracy_8000": at_size(8000, []), "accuracy_20000": at_size(20000, [])}


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true")
    print(json.dumps(measure(parser.parse_args().quick), indent=2))
