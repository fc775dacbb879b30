"""A hydra callback that writes a sweep's results into its sweep directory, for any sweeper.

hydra's Optuna sweeper writes optimization_results.yaml and the basic sweeper nothing; this callback gives both the
same two files, read from each job's metrics.json (so jobs run by any launcher count):
    sweep_results.csv   one row per job: job folder, val_rmse, rows, epochs, overrides; in job order
    best.json           the best job: its folder, value, the swept parameters' values and all its overrides
`FinishTrackers` ends each job's W&B run, so the jobs of one sweep process do not share one.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import sys
from pathlib import Path
from typing import Any

import yaml
from hydra.experimental.callback import Callback
from omegaconf import DictConfig

log = logging.getLogger(__name__)


def _job_key(path: Path) -> tuple:
    return tuple(int(p) if p.isdigit() else p for p in path.parts)  # job 10 after job 9


def collect_jobs(sweep_dir: Path, metric: str = "val_rmse") -> list[dict[str, Any]]:
    """Every finished job under sweep_dir (a folder with metrics.json), with its overrides, in job order."""
    jobs = []
    for metrics_file in sorted(sweep_dir.rglob("metrics.json"), key=lambda p: _job_key(p.relative_to(sweep_dir))):
        job_dir = metrics_file.parent
        metrics = json.loads(metrics_file.read_text(encoding="utf-8"))
        overrides_file = job_dir / ".hydra" / "overrides.yaml"
        overrides = yaml.safe_load(overrides_file.read_text(encoding="utf-8")) if overrides_file.is_file() else []
        jobs.append({"job": str(job_dir.relative_to(sweep_dir)), metric: metrics.get(metric), "metrics": metrics,
                     "overrides": [str(o) for o in overrides or []]})  # fmt: skip
    return jobs


def _value(text: str) -> Any:
    """An override's value as YAML reads it (0.001 -> float, 256 -> int), as the Optuna sweeper reports them."""
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError:
        return text


def _swept(jobs: list[dict[str, Any]]) -> set[str]:
    """The override keys whose values differ between jobs: what the sweep varied."""
    values: dict[str, set[str]] = {}
    for job in jobs:
        for override in job["overrides"]:
            key, _, value = override.partition("=")
            values.setdefault(key, set()).add(value)
    missing = {key for key in values if any(not any(o.startswith(f"{key}=") for o in j["overrides"]) for j in jobs)}
    return {key for key, seen in values.items() if len(seen) > 1} | missing


def write_sweep_results(sweep_dir: Path, metric: str = "val_rmse", mode: str = "min") -> dict[str, Any] | None:
    """Write sweep_results.csv and best.json atomically; returns the best job's record (None without jobs)."""
    from demandnet.outputs import atomic_write_text, write_json  # numpy and pandas: only when a sweep ends

    jobs = collect_jobs(sweep_dir, metric)
    scored = [job for job in jobs if isinstance(job[metric], (int, float))]
    if not scored:
        log.warning("sweep %s: no job wrote a %s in metrics.json; no sweep results", sweep_dir, metric)
        return None
    swept = _swept(jobs)
    table = io.StringIO()
    writer = csv.writer(table, lineterminator="\n")
    writer.writerow(["job", metric, "n_train", "n_val", "epochs", "wall_seconds", "overrides"])
    for job in jobs:
        m = job["metrics"]
        writer.writerow([job["job"], job[metric], m.get("n_train"), m.get("n_val"), m.get("epochs"),
                         m.get("wall_seconds"), " ".join(job["overrides"])])  # fmt: skip
    atomic_write_text(sweep_dir / "sweep_results.csv", table.getvalue())
    best = (min if mode == "min" else max)(scored, key=lambda job: job[metric])
    record = {
        "metric": metric,
        "mode": mode,
        "best_value": best[metric],
        "best_job": best["job"],
        "best_run_dir": str((sweep_dir / best["job"]).resolve()),
        "best_params": {k: _value(v) for k, _, v in (o.partition("=") for o in best["overrides"]) if k in swept},
        "overrides": best["overrides"],
        "n_jobs": len(jobs),
    }
    write_json(sweep_dir / "best.json", record)
    log.info("sweep best %s %.4f in %s with %s (all jobs: %s)", metric, best[metric], record["best_run_dir"],
             record["best_params"], sweep_dir / "sweep_results.csv")  # fmt: skip
    return record


class SweepResults(Callback):
    """Configured under hydra.callbacks in conf/train.yaml; does nothing for a single run."""

    def __init__(self, metric: str = "val_rmse", mode: str = "min") -> None:
        if mode not in ("min", "max"):
            raise ValueError(f"SweepResults: mode must be 'min' or 'max', got {mode!r}")
        self.metric, self.mode = metric, mode

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        write_sweep_results(Path(config.hydra.sweep.dir), self.metric, self.mode)


class FinishTrackers(Callback):
    """A hydra callback: end the W&B run when a job ends, so the next job of a --multirun sweep starts its own run
    (WandbLogger would otherwise reuse the open one; a single run's ends at exit anyway)."""

    def on_job_end(self, config: DictConfig, job_return: Any, **kwargs: Any) -> None:
        wandb = sys.modules.get("wandb")  # imported only by a run that used logger=wandb
        if wandb is not None and getattr(wandb, "run", None) is not None:
            wandb.finish()
