"""report.html: one self-contained page (inline CSS, the PNGs beside it referenced by relative name)."""

from __future__ import annotations

import html
import math
from dataclasses import dataclass, field

import pandas as pd

STYLE = """
body { font-family: -apple-system, 'Segoe UI', Helvetica, Arial, sans-serif; max-width: 1180px; margin: 2em auto;
       padding: 0 1em; color: #222; }
h1 { margin-bottom: 0.2em; } .sub { color: #666; margin-top: 0; }
table { border-collapse: collapse; margin: 0.6em 0; font-size: 0.9em; }
td, th { border: 1px solid #ddd; padding: 3px 8px; text-align: left; } th { background: #f4f4f4; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
.headline { font-size: 1.25em; } .note { background: #fff6e0; border-left: 4px solid #f0b000; padding: 0.4em 0.8em; }
img { max-width: 100%; border: 1px solid #eee; } pre { background: #f7f7f7; padding: 0.8em; overflow-x: auto; }
"""


@dataclass
class Section:
    title: str
    image: str | None = None  # file name beside report.html
    text: str = ""
    tables: list[pd.DataFrame] = field(default_factory=list)


def _cell(value: object) -> str:
    if isinstance(value, float):
        return f'<td class="num">{"" if math.isnan(value) else f"{value:.4f}"}</td>'
    if isinstance(value, int):
        return f'<td class="num">{value:,}</td>'
    return f"<td>{html.escape(str(value))}</td>"


def table_html(frame: pd.DataFrame) -> str:
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in frame.columns)
    rows = "".join("<tr>" + "".join(_cell(v) for v in row) + "</tr>" for row in frame.astype(object).itertuples(False))
    return f"<table><tr>{head}</tr>{rows}</table>"


def metrics_html(metrics: dict) -> str:
    rows = []
    for key, value in metrics.items():
        shown = ", ".join(f"{k}: {v}" for k, v in value.items()) if isinstance(value, dict) else value
        rows.append(f"<tr><th>{html.escape(str(key))}</th>{_cell(shown)}</tr>")
    return f"<table>{''.join(rows)}</table>"


def page(run_dir: str, metrics: dict | None, sections: list[Section], notes: list[str], config: str | None) -> str:
    """The whole document as one string."""
    parts = [f"<h1>demandnet run report</h1><p class='sub'>{html.escape(run_dir)}</p>"]
    if metrics and metrics.get("val_rmse") is not None:
        floor, mean = metrics.get("noise_floor_rmse"), metrics.get("train_mean_rmse")
        extra = "".join(
            f" &middot; {label} <b>{value:.4f}</b>"
            for label, value in (("predicting the train mean", mean), ("noise floor", floor))
            if value is not None
        )
        parts.append(f"<p class='headline'>val_rmse <b>{metrics['val_rmse']:.4f}</b>{extra}</p>")
    parts += [f"<p class='note'>{html.escape(note)}</p>" for note in notes]
    for section in sections:
        parts.append(f"<h2>{html.escape(section.title)}</h2>")
        if section.text:
            parts.append(f"<p>{html.escape(section.text)}</p>")
        if section.image:
            parts.append(f'<img src="{html.escape(section.image)}" alt="{html.escape(section.title)}">')
        parts += [table_html(t) for t in section.tables]
    parts.append("<h2>metrics.json</h2>")
    parts.append(metrics_html(metrics) if metrics else "<p class='note'>no metrics.json in the run directory</p>")
    parts.append("<h2>Resolved config (.hydra/config.yaml)</h2>")
    parts.append(f"<pre>{html.escape(config)}</pre>" if config else "<p class='note'>no .hydra/config.yaml</p>")
    body = "\n".join(parts)
    return (
        "<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'><title>demandnet run report</title>"
        f"<style>{STYLE}</style></head><body>\n{body}\n</body></html>\n"
    )
