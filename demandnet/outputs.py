"""Atomic writes: a reader (or a crash) never sees a half-written metrics file or submission."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd


def atomic_write_text(path: str | Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    """Write to a temp file in the same folder, fsync, then rename over the target (atomic on POSIX)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, 0o666 & ~_umask())  # mkstemp makes 0600: give the file the mode a plain open() would
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_json(path: str | Path, payload: dict) -> None:
    atomic_write_text(path, json.dumps(payload, indent=2, ensure_ascii=False) + "\n")


def write_submission(path: str | Path, item_ids: np.ndarray, predictions: np.ndarray) -> None:
    """`item_id,deal_probability`, one row per input row, in input order."""
    if len(item_ids) != len(predictions):
        raise ValueError(f"{len(item_ids)} item_ids but {len(predictions)} predictions")
    if not np.isfinite(predictions).all():
        raise ValueError("predictions contain NaN or infinity; refusing to write a submission")
    frame = pd.DataFrame({"item_id": item_ids, "deal_probability": np.clip(predictions, 0.0, 1.0)})
    atomic_write_text(path, frame.to_csv(index=False, float_format="%.6f"))
