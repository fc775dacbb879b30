"""The table a run prints when it ends (rank 0): what it reached, against what, and where its files are."""

from __future__ import annotations

import io
import logging
from pathlib import Path
from typing import Any

from rich import box
from rich.console import Console
from rich.table import Table

log = logging.getLogger(__name__)


def _number(value: float | None) -> str:
    return f"{value:.4f}" if value is not None else "n/a"


def summary_rows(metrics: dict[str, Any]) -> list[tuple[str, str]]:
    """(label, value) pairs from a run's metrics.json payload."""
    minutes, seconds = divmod(round(float(metrics.get("wall_seconds") or 0.0)), 60)
    rows = " / ".join(f"{int(metrics.get(k) or 0):,}" for k in ("n_train", "n_val", "n_test"))
    return [
        ("val_rmse", _number(metrics.get("val_rmse"))),
        ("train-mean RMSE", _number(metrics.get("train_mean_rmse"))),
        ("noise floor RMSE", _number(metrics.get("noise_floor_rmse"))),
        ("rows train / val / test", rows),
        ("epochs", str(metrics.get("epochs"))),
        ("best checkpoint", str(metrics.get("best_checkpoint") or "none")),
        ("submission", str(metrics.get("submission") or "none")),
        ("wall time", f"{minutes} min {seconds} s"),
    ]


def summary_table(metrics: dict[str, Any], run_dir: str | Path) -> str:
    """The summary as text: a rich table, wide enough that no path is wrapped or cut."""
    rows = [*summary_rows(metrics), ("run directory", str(run_dir))]
    table = Table(title="demandnet run summary", box=box.SIMPLE, show_header=False, title_justify="left")
    table.add_column("what", style="bold", no_wrap=True)
    table.add_column("value", no_wrap=True, overflow="ignore")
    for label, value in rows:
        table.add_row(label, value)
    width = max(len(label) for label, _ in rows) + max(len(value) for _, value in rows) + 8
    console = Console(file=io.StringIO(), width=width, color_system=None, force_terminal=False, highlight=False)
    console.print(table)
    return "\n".join(line.rstrip() for line in console.file.getvalue().splitlines() if line.strip())


def log_summary(metrics: dict[str, Any], run_dir: str | Path) -> None:
    """Through the logging system, so it reaches the console and the run's log file alike."""
    log.info("run finished\n%s", summary_table(metrics, run_dir))
