"""build_report(run_dir): the plots and report.html from the files a run left, nothing else (no model, no data).

Each figure needs its own inputs; one that is missing (no csv logger, one epoch, an old run without
val_predictions.csv) leaves that figure out with a note on the page.
"""

from __future__ import annotations

import json
import logging
import shutil
from collections.abc import Callable
from pathlib import Path

import pandas as pd

from demandnet.outputs import atomic_write_text
from demandnet.report import plots
from demandnet.report.html import Section, page
from demandnet.report.tables import epoch_curves, rmse_by_bucket, rmse_by_category, step_curve

log = logging.getLogger(__name__)
REPORT_DIR = "report"
PREDICTIONS_FILE = "val_predictions.csv"
ABLATION_FILE = "ablation.json"  # in the run dir, written by training; copied into report/
CONFIG_FILE = ".hydra/config.yaml"
PREDICTION_COLUMNS = ("item_id", "prediction", "target")
CATEGORY = "parent_category_name"


class NotARunDir(ValueError):
    """The folder holds none of the files a training run writes."""


def _metrics_csv(run_dir: Path) -> Path | None:
    """The csv logger's file: csv/metrics.csv with the default logger config, else the first one found."""
    default = run_dir / "csv" / "metrics.csv"
    if default.is_file():
        return default
    found = sorted(p for p in run_dir.rglob("metrics.csv") if REPORT_DIR not in p.relative_to(run_dir).parts)
    return found[0] if found else None


def _read_predictions(path: Path) -> pd.DataFrame:
    frame = pd.read_csv(path)
    missing = [c for c in PREDICTION_COLUMNS if c not in frame.columns]
    if missing:
        raise ValueError(f"{path} lacks column(s) {missing}; it has {list(frame.columns)}")
    return frame


def _read(
    reader: Callable[[Path], pd.DataFrame], path: Path | None, absent: str
) -> tuple[pd.DataFrame | None, str | None]:
    """(table, None), or (None, why not) when the file is absent or unreadable."""
    if path is None:
        return None, absent
    try:
        return reader(path), None
    except Exception as e:  # noqa: BLE001 a broken file costs its figures only, and the page says why
        return None, f"{path.name} could not be read ({type(e).__name__}: {e})"


def build_report(run_dir: str | Path) -> Path:
    """Write `run_dir/report/` (PNGs, ablation.json, report.html); returns the page's path."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise NotARunDir(f"{run_dir} is not a folder")
    if not (run_dir / "metrics.json").is_file() and not (run_dir / CONFIG_FILE).is_file():
        raise NotARunDir(
            f"{run_dir} is not a demandnet run directory: it has neither metrics.json nor {CONFIG_FILE} "
            "(give the folder that `python train.py` printed as its run dir)"
        )
    out = run_dir / REPORT_DIR
    out.mkdir(exist_ok=True)
    metrics = json.loads((run_dir / "metrics.json").read_text()) if (run_dir / "metrics.json").is_file() else None
    notes: list[str] = [] if metrics else ["no metrics.json: the run did not finish"]
    sections: list[Section] = []

    def draw(title: str, missing: str | None, make: Callable[[], Section]) -> None:
        """A section if its inputs are there (`missing` says why not) and drawing works; else a note."""
        if missing:
            notes.append(f"{title}: not drawn, {missing}")
            return
        try:
            sections.append(make())
        except Exception as e:  # one broken input must not cost the other figures
            log.warning("report: could not draw %s", title, exc_info=True)
            notes.append(f"{title}: not drawn, {type(e).__name__}: {e}")

    curves_csv = _metrics_csv(run_dir)
    curves, why_no_curves = _read(epoch_curves, curves_csv, "no csv/metrics.csv (logger=csv writes it)")
    if curves is not None and curves["val_rmse"].notna().sum() < 2:
        why_no_curves = "fewer than two validated epochs"
    references = {"predicting the train mean": (metrics or {}).get("train_mean_rmse"),
                  "noise floor": (metrics or {}).get("noise_floor_rmse")}  # fmt: skip

    def learning() -> Section:
        plots.learning_curves(curves, step_curve(curves_csv), references, out / "learning_curves.png")
        return Section("Learning curves", "learning_curves.png", f"from {curves_csv.relative_to(run_dir)}")

    draw("Learning curves", why_no_curves, learning)
    path = run_dir / PREDICTIONS_FILE
    frame, why_no_frame = _read(_read_predictions, path if path.is_file() else None, f"no {PREDICTIONS_FILE}")
    overall = float(((frame["prediction"] - frame["target"]) ** 2).mean() ** 0.5) if frame is not None else 0.0

    def scatter() -> Section:
        plots.predicted_vs_actual(frame, overall, out / "predicted_vs_actual.png")
        return Section("Predicted against actual", "predicted_vs_actual.png", "validation rows, best checkpoint")

    def buckets() -> Section:
        table = rmse_by_bucket(frame)
        plots.rmse_bars(table, overall, "RMSE by target bucket", out / "rmse_by_bucket.png", horizontal=False)
        return Section("RMSE by target bucket", "rmse_by_bucket.png", tables=[table])

    def categories() -> Section:
        table = rmse_by_category(frame)
        plots.rmse_bars(table, overall, "RMSE by parent category", out / "rmse_by_category.png")
        return Section("RMSE by parent category", "rmse_by_category.png", tables=[table])

    draw("Predicted against actual", why_no_frame, scatter)
    draw("RMSE by target bucket", why_no_frame, buckets)
    no_category = frame is not None and CATEGORY not in frame.columns
    draw("RMSE by parent category", why_no_frame or (f"{PREDICTIONS_FILE} has no {CATEGORY}" if no_category else None),
         categories)  # fmt: skip

    def ablation() -> Section:
        result = json.loads((run_dir / ABLATION_FILE).read_text())
        plots.ablation_bars(result, out / "ablation.png")
        shutil.copyfile(run_dir / ABLATION_FILE, out / ABLATION_FILE)
        rows = [{"branch": name, **numbers} for name, numbers in result["branches"].items()]
        text = ("the validation set predicted again with one branch's input replaced by its missing-input "
                f"stand-in; {result['n_val']:,} rows")  # fmt: skip
        return Section("Modality ablation", "ablation.png", text, tables=[pd.DataFrame(rows)])

    draw("Modality ablation", None if (run_dir / ABLATION_FILE).is_file() else f"no {ABLATION_FILE}", ablation)
    config = (run_dir / CONFIG_FILE).read_text() if (run_dir / CONFIG_FILE).is_file() else None
    report = out / "report.html"
    atomic_write_text(report, page(str(run_dir.resolve()), metrics, sections, notes, config))
    return report
