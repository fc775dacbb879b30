"""Helpers shared by the benchmarks: the project's own configs, timed CLI runs, medians, data sets on disk."""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from hydra import compose, initialize_config_dir
from omegaconf import DictConfig

ROOT = Path(__file__).resolve().parents[1]
WORK = Path(os.environ.get("DEMANDNET_BENCH_DIR", ROOT / "benchmarks" / "results" / "work"))


def config(*overrides: str, run_dir: Path | None = None) -> DictConfig:
    """conf/train.yaml composed with `overrides`, as `python train.py` would resolve it (outside a hydra run)."""
    run_dir = run_dir or WORK / "runs" / f"inproc-{time.time_ns()}"
    with initialize_config_dir(str(ROOT / "conf"), version_base="1.3"):
        return compose("train", [f"paths.output_dir={run_dir}", f"paths.data_dir={WORK / 'data'}", *overrides])


def train_cli(name: str, *overrides: str) -> dict:
    """`python train.py` in a fresh run dir under WORK; its metrics.json plus the command's wall seconds."""
    run_dir = WORK / "runs" / f"{name}-{time.time_ns()}"
    # no run report: its extra validation passes are not what a benchmark measures
    args = [sys.executable, str(ROOT / "train.py"), f"hydra.run.dir={run_dir}", f"paths.data_dir={WORK / 'data'}",
            "report=false", *overrides]  # fmt: skip
    started = time.perf_counter()
    done = subprocess.run(args, check=False, cwd=ROOT, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(args)} failed:\n{done.stderr[-4000:]}")
    metrics = json.loads((run_dir / "metrics.json").read_text())
    return {**metrics, "command_seconds": time.perf_counter() - started, "run_dir": str(run_dir)}


def median_of(repeats: int, fn: Callable[[], float]) -> float:
    return statistics.median(fn() for _ in range(repeats))


def peak_rss_gb() -> float:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6  # KiB on Linux
