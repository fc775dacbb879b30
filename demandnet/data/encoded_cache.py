"""The encoded arrays of a data set on disk, so that a second run on the same files starts at once.

    <cache_dir>/encoded/<key>/arrays.npz + state.json

The key digests the bytes of the train and test files and the whole preprocessing config (split, tabular and
text settings, the tokenizer's class and settings, this module's format), so any change to a file or a setting
misses. An entry is written to a temporary folder and renamed into place: a reader sees all of it or nothing.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import tempfile
from pathlib import Path
from typing import Self

import numpy as np

from demandnet.data.feature_store import default_cache_dir

log = logging.getLogger(__name__)
FORMAT = 1  # bump when what setup() encodes changes
_CHUNK = 1 << 24


def file_digest(path: Path | None) -> str | None:
    if path is None or not path.is_file():
        return None
    h = hashlib.blake2b(digest_size=16)
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            h.update(chunk)
    return h.hexdigest()


def settings_of(obj: object) -> dict:
    """An object's plain settings (what it was built with), plus a stamp of a local model folder it reads."""
    plain = (str, int, float, bool, type(None), list, tuple, dict)
    settings = {k: v for k, v in sorted(vars(obj).items()) if not k.startswith("_") and isinstance(v, plain)}
    folder = Path(str(settings.get("name_or_path", "")))
    if settings.get("name_or_path") and folder.is_dir():
        settings["folder_files"] = sorted((p.name, p.stat().st_size, p.stat().st_mtime_ns) for p in folder.iterdir())
    cls = type(obj)
    return {"class": f"{cls.__module__}.{cls.__qualname__}", **settings}


def cache_key(files: dict[str, Path | None], settings: dict) -> str:
    """Digest of the files' bytes and the settings (objects count by `settings_of`)."""
    parts = {"format": FORMAT, "files": {name: file_digest(path) for name, path in files.items()},
             "settings": {k: v if isinstance(v, (str, int, float, list, type(None))) else settings_of(v)
                          for k, v in settings.items()}}  # fmt: skip
    return hashlib.blake2b(json.dumps(parts, sort_keys=True, default=str).encode(), digest_size=16).hexdigest()


def pack(parts: dict[str, dict[str, np.ndarray] | None]) -> dict[str, np.ndarray]:
    """{"train": {...}, "test": None, ...} -> one flat dict of arrays ("train/<key>"), as np.savez takes it."""
    return {f"{name}/{k}": v for name, arrays in parts.items() for k, v in (arrays or {}).items()}


def unpack(stored: dict[str, np.ndarray], names: tuple[str, ...]) -> dict[str, dict[str, np.ndarray] | None]:
    parts = {name: {k.split("/", 1)[1]: v for k, v in stored.items() if k.startswith(f"{name}/")} for name in names}
    return {name: arrays or None for name, arrays in parts.items()}


class EncodedCache:
    def __init__(self, cache_dir: str | Path | None = None) -> None:
        self.root = default_cache_dir(cache_dir)
        self.root = self.root / "encoded"

    def load(self, key: str) -> tuple[dict[str, np.ndarray], dict] | None:
        folder = self.root / key
        try:
            state = json.loads((folder / "state.json").read_text())
            with np.load(folder / "arrays.npz", allow_pickle=False) as npz:
                arrays = {name: npz[name] for name in npz.files}
        except (FileNotFoundError, ValueError, OSError, KeyError) as e:
            if folder.exists():
                log.warning("ignoring an unreadable encoded-data cache entry %s: %s; encoding again", folder, e)
                shutil.rmtree(folder, ignore_errors=True)  # so this run's entry takes its place
            return None
        return arrays, state

    def save(self, key: str, arrays: dict[str, np.ndarray], state: dict) -> None:
        """Store an entry; a cache that cannot be written (read-only, full) is a warning, never a failed run."""
        try:
            self._save(key, arrays, state)
        except OSError as e:
            log.warning("cannot write the encoded-data cache %s (%s): the next run encodes again", self.root, e)

    def _save(self, key: str, arrays: dict[str, np.ndarray], state: dict) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        folder = self.root / key
        tmp = Path(tempfile.mkdtemp(dir=self.root, prefix=".tmp-"))
        try:
            np.savez(tmp / "arrays.npz", **arrays)
            (tmp / "state.json").write_text(json.dumps(state))
            try:
                os.rename(tmp, folder)  # atomic; fails if another process put the same entry there first
            except OSError:
                if not folder.is_dir():
                    raise
        finally:
            shutil.rmtree(tmp, ignore_errors=True)


class WarningsKept(logging.Handler):
    """Collects the warnings demandnet logs while a data set is encoded, so a cache hit can say them again."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())

    def __enter__(self) -> Self:
        logging.getLogger("demandnet").addHandler(self)
        return self

    def __exit__(self, *_: object) -> None:
        logging.getLogger("demandnet").removeHandler(self)
