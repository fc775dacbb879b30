"""predict_rows_per_s: `python -m demandnet.predict` of the default model on CPU with 1 and 2 processes.

Rows/s = rows / (seconds for N rows - seconds for 1 row): the process start (imports, checkpoint) is taken out.

    python -m benchmarks.predict_speed [--quick]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time

import pandas as pd

from benchmarks.common import ROOT, WORK, train_cli


def _predict_seconds(ckpt: str, csv: str, processes: int) -> float:
    out = WORK / f"predict-{processes}-{time.time_ns()}.csv"
    args = [sys.executable, "-m", "demandnet.predict", f"ckpt_path={ckpt}", f"input_csv={csv}", f"output_csv={out}",
            f"trainer.devices={processes}"]  # fmt: skip
    started = time.perf_counter()
    done = subprocess.run(args, check=False, cwd=ROOT, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(args)} failed:\n{done.stderr[-3000:]}")
    return time.perf_counter() - started


def measure(quick: bool = False) -> dict:
    # the default model (its weights do not change the speed: one epoch, fewer rows with --quick)
    n_train, n_test, repeats = (2000, 2000, 1) if quick else (8000, 10000, 2)
    run = train_cli("predict-model", "trainer.max_epochs=1", f"data.synthetic.n_train={n_train}",
                    f"data.synthetic.n_test={n_test}")  # fmt: skip
    ckpt = run["best_checkpoint"]
    test = WORK / "data" / f"synthetic-v1-{n_train}-{n_test}-0" / "test.csv"
    one = WORK / "predict-one-row.csv"
    pd.read_csv(test, nrows=1).to_csv(one, index=False)
    result = {"predict_rows": n_test}
    for processes in (1, 2):
        start_cost = min(_predict_seconds(ckpt, str(one), processes) for _ in range(repeats))
        total = min(_predict_seconds(ckpt, str(test), processes) for _ in range(repeats))
        result[f"predict_rows_per_s_{processes}_process"] = n_test / max(total - start_cost, 1e-9)
        result[f"predict_start_seconds_{processes}_process"] = start_cost
    return result


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true")
    print(json.dumps(measure(parser.parse_args().quick), indent=2))
