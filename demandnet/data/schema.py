"""The Avito columns, how to read them, and validation with errors that name the file, row and column."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd

TARGET = "deal_probability"
ID = "item_id"
CATEGORICAL = [
    "region",
    "city",
    "parent_category_name",
    "category_name",
    "param_1",
    "param_2",
    "param_3",
    "user_type",
    "image_top_1",
    "user_id",
]
TEXT = ["title", "description"]
NUMERIC = ["price", "item_seq_number"]
DATE = "activation_date"
IMAGE = "image"
# The 17 test columns in Kaggle's order; train adds the target at the end.
COLUMNS = [
    ID, "user_id", "region", "city", "parent_category_name", "category_name", "param_1", "param_2", "param_3",
    "title", "description", "price", "item_seq_number", DATE, "user_type", IMAGE, "image_top_1",
]  # fmt: skip
REQUIRED = [ID, "region", "city", "parent_category_name", "category_name", "title", "user_type"]
log = logging.getLogger(__name__)
_STRING_COLUMNS = [c for c in COLUMNS if c not in (*NUMERIC, "image_top_1")]


class DataError(ValueError):
    """Input data that demandnet cannot use; the message names the file, and the rows or column."""


def read_table(path: str | Path, require_target: bool = False) -> pd.DataFrame:
    """Read an Avito CSV as strings and floats, validate it, and return it with a fresh RangeIndex.

    Optional columns that are absent are added as missing; extra columns are kept but never used.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: file not found")
    try:
        frame = pd.read_csv(path, dtype={c: "string" for c in _STRING_COLUMNS}, keep_default_na=False, na_values=[""])
    except UnicodeDecodeError as err:
        raise DataError(f"{path}: not UTF-8 text ({err}); re-save the file as UTF-8") from err
    except pd.errors.EmptyDataError as err:
        raise DataError(f"{path}: the file is empty (no header)") from err
    except pd.errors.ParserError as err:  # wrong separator, unbalanced quotes, ragged rows
        raise DataError(f"{path}: not a comma-separated Avito file ({err})") from err
    frame.columns = [str(c).lstrip("\ufeff").strip() for c in frame.columns]
    missing = [c for c in REQUIRED if c not in frame.columns]
    if require_target and TARGET not in frame.columns:
        missing.append(TARGET)
    if missing:
        raise DataError(f"{path}: required column(s) missing: {', '.join(missing)}")
    if frame.empty:
        raise DataError(f"{path}: no data rows")
    absent = [c for c in COLUMNS if c not in frame.columns]
    if absent:
        log.warning("%s: column(s) %s absent: treated as missing in every row", path, ", ".join(absent))
    for column in absent:
        frame[column] = pd.NA
    numeric = [*NUMERIC, "image_top_1"] + ([TARGET] if TARGET in frame.columns else [])
    for column in numeric:
        frame[column] = _to_float(frame[column], path, column)
    for column in NUMERIC:
        _warn_rows(path, column, frame[column], ~np.isfinite(frame[column]) | (frame[column] < 0),
                   "negative or infinite: treated as missing")  # fmt: skip
    _warn_rows(path, DATE, frame[DATE], parse_dates(frame[DATE]).isna(), "not a date: no weekday")
    _check_ids(frame, path)
    if require_target:
        _check_target(frame, path)
    return frame.reset_index(drop=True)


def parse_dates(values: pd.Series) -> pd.Series:
    """activation_date as datetimes: 2017-03-28, also with a time (as a re-saved CSV has it); NaT otherwise."""
    return pd.to_datetime(values, errors="coerce", format="ISO8601")


def _warn_rows(path: Path, column: str, values: pd.Series, bad: pd.Series, what: str) -> None:
    """One warning for the present values of `column` flagged in `bad`: how many, and the first one."""
    bad = (bad & values.notna()).to_numpy()
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        log.warning("%s: column %r, %d row(s) %s (first: data row %d, %r)", path, column, int(bad.sum()), what,
                    row + 1, str(values.iloc[row]))  # fmt: skip


def _to_float(values: pd.Series, path: Path, column: str) -> pd.Series:
    numbers = pd.to_numeric(values, errors="coerce").astype("float64")
    # "nan" is how some tools write a missing number; anything else that does not parse is an error
    bad = values.notna() & numbers.isna() & (values.astype("string").str.strip().str.lower() != "nan")
    if bad.any():
        row = int(np.flatnonzero(bad.to_numpy())[0])
        raise DataError(f"{path}: column {column!r}, data row {row + 1}: {values.iloc[row]!r} is not a number")
    return numbers


def _check_ids(frame: pd.DataFrame, path: Path) -> None:
    ids = frame[ID]
    if ids.isna().any():
        row = int(np.flatnonzero(ids.isna().to_numpy())[0])
        raise DataError(f"{path}: column {ID!r}, data row {row + 1}: empty item_id")
    duplicated = ids[ids.duplicated()].unique().tolist()
    if duplicated:
        raise DataError(f"{path}: column {ID!r}: duplicated item_id(s): {', '.join(map(str, duplicated[:10]))}")


def _check_target(frame: pd.DataFrame, path: Path) -> None:
    target = frame[TARGET]
    bad = target.isna() | (target < 0) | (target > 1)
    if bad.any():
        ids = frame.loc[bad, ID].tolist()
        raise DataError(
            f"{path}: column {TARGET!r} must be in [0, 1]; {len(ids)} bad row(s), item_id(s): {', '.join(ids[:10])}"
        )
