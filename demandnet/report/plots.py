"""The report's figures, drawn with matplotlib's object API on the Agg canvas (no pyplot state, no display)."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter

from demandnet.outputs import atomic_write_bytes

TRAIN, VAL, MUTED = "#1f77b4", "#d62728", "#7f7f7f"


def _save(figure: Figure, path: Path) -> None:
    FigureCanvasAgg(figure)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    atomic_write_bytes(path, buffer.getvalue())


def _reference_lines(ax, references: dict[str, float | None]) -> None:
    for (label, value), style in zip(references.items(), (":", "--")):
        if value is not None:
            ax.axhline(value, color=MUTED, linestyle=style, linewidth=1, label=f"{label} {value:.4f}")


def learning_curves(epochs: pd.DataFrame, steps: pd.DataFrame, references: dict[str, float | None], path: Path) -> None:
    """Left: train/loss (per step, faint, and the epoch mean) and val/loss; right: val/rmse with its best epoch."""
    figure = Figure(figsize=(11, 4))
    loss, score = figure.subplots(1, 2)
    if len(steps):
        loss.plot(steps["epoch"], steps["loss"], color=TRAIN, alpha=0.25, linewidth=0.8, label="train/loss (step)")
    loss.plot(epochs.index, epochs["train_loss"], "o-", color=TRAIN, label="train/loss (epoch mean)")
    loss.plot(epochs.index, epochs["val_loss"], "o-", color=VAL, label="val/loss")
    loss.set(xlabel="epoch", ylabel="loss", title="Loss")
    loss.legend(fontsize=8)
    score.plot(epochs.index, epochs["val_rmse"], "o-", color=VAL, label="val/rmse")
    best = epochs["val_rmse"].idxmin()
    score.scatter([best], [epochs.loc[best, "val_rmse"]], s=120, facecolors="none", edgecolors="black",
                  label=f"best: epoch {best}, {epochs.loc[best, 'val_rmse']:.4f}", zorder=3)  # fmt: skip
    _reference_lines(score, references)
    score.set(xlabel="epoch", ylabel="RMSE", title="Validation RMSE")
    score.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.16), ncol=2)  # below: the curve fills the box
    for ax in (loss, score):
        ax.grid(alpha=0.3)
        ax.set_xticks(list(epochs.index))
    _save(figure, path)


def predicted_vs_actual(frame: pd.DataFrame, rmse: float, path: Path) -> None:
    """Left: hexbin of prediction against target with the diagonal and the mean prediction per target bin;
    right: the two distributions (the target is zero-inflated, the prediction rarely is)."""
    figure = Figure(figsize=(11, 4.6), layout="constrained")
    scatter, hist = figure.subplots(1, 2)
    target, prediction = frame["target"].to_numpy(), frame["prediction"].to_numpy()
    cells = scatter.hexbin(target, prediction, gridsize=35, extent=(0, 1, 0, 1), bins="log", mincnt=1, cmap="viridis")
    figure.colorbar(cells, ax=scatter, label="rows per cell", format=FuncFormatter(lambda v, _: f"{v:g}"))
    scatter.plot([0, 1], [0, 1], color="black", linewidth=1, label="prediction = target")
    edges = np.linspace(0, 1, 11)
    which = np.clip(np.digitize(target, edges[1:-1]), 0, 9)
    means = pd.Series(prediction).groupby(which).mean()
    scatter.plot((edges[means.index] + edges[means.index + 1]) / 2, means.to_numpy(), "o-", color="orange",
                 label="mean prediction per target bin")  # fmt: skip
    scatter.set(xlim=(0, 1), ylim=(0, 1), xlabel="target (deal_probability)", ylabel="prediction",
                title=f"Validation: {len(frame):,} rows, RMSE {rmse:.4f}")  # fmt: skip
    scatter.legend(fontsize=8, loc="upper left")
    bins = np.linspace(0, 1, 41)
    hist.hist(target, bins=bins, alpha=0.6, color=MUTED, label="target")
    hist.hist(prediction, bins=bins, alpha=0.6, color=TRAIN, label="prediction")
    hist.set(yscale="log", xlabel="deal_probability", ylabel="rows (log)", title="Distributions")
    hist.legend(fontsize=8)
    _save(figure, path)


def rmse_bars(table: pd.DataFrame, overall: float, title: str, path: Path, horizontal: bool = True) -> None:
    """One bar per group of `tables.rmse_table`, labelled with its row count, against the overall RMSE."""
    labels = [f"{group} (n={rows:,})" for group, rows in zip(table["group"], table["rows"])]
    values = table["rmse"].fillna(0.0).to_numpy()
    figure = Figure(figsize=(8, max(2.6, 0.32 * len(table) + 1.2)) if horizontal else (7, 4))
    ax = figure.subplots()
    if horizontal:
        bars = ax.barh(labels[::-1], values[::-1], color=TRAIN)
        ax.axvline(overall, color=VAL, linestyle="--", linewidth=1, label=f"all rows {overall:.4f}")
        ax.set(xlabel="RMSE", title=title)
    else:
        bars = ax.bar(labels, values, color=TRAIN)
        ax.axhline(overall, color=VAL, linestyle="--", linewidth=1, label=f"all rows {overall:.4f}")
        ax.set(ylabel="RMSE", title=title)
    shown = table["rmse"].to_numpy()[::-1] if horizontal else table["rmse"].to_numpy()
    ax.bar_label(bars, labels=["no rows" if np.isnan(v) else f"{v:.3f}" for v in shown], fontsize=8, padding=2)
    ax.legend(fontsize=8, loc="lower right" if horizontal else "upper left")
    if not horizontal:
        ax.set_ylim(top=1.15 * max(float(np.nanmax(values, initial=0.0)), overall))  # room for the labels
    ax.grid(alpha=0.3, axis="x" if horizontal else "y")
    _save(figure, path)


def ablation_bars(ablation: dict, path: Path) -> None:
    """The rise of the validation RMSE when each branch gets its missing-input stand-in."""
    names = list(ablation["branches"])
    rises = [ablation["branches"][n]["rise"] for n in names]
    figure = Figure(figsize=(7, 0.6 * len(names) + 1.6))
    ax = figure.subplots()
    ax.barh(names[::-1], rises[::-1], color=[VAL if r > 0 else MUTED for r in rises[::-1]])
    for y, name in enumerate(names[::-1]):
        rise, value = ablation["branches"][name]["rise"], ablation["branches"][name]["val_rmse"]
        ax.annotate(f"{rise:+.4f} (RMSE {value:.4f})", (max(rise, 0.0), y), xytext=(4, 0),
                    textcoords="offset points", va="center", fontsize=8)  # fmt: skip
    ax.axvline(0, color="black", linewidth=0.8)
    ax.set(xlabel="rise of validation RMSE", title=f"Modality ablation (all branches: RMSE {ablation['val_rmse']:.4f})")
    ax.margins(x=0.45)
    ax.grid(alpha=0.3, axis="x")
    _save(figure, path)
