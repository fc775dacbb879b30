"""A content-addressed disk cache of per-photo arrays: one small .npy per (kind, key, photo content).

    <cache_dir>/image-features/<model key>/<hh>/<photo digest>.npy     (F,) float32, frozen backbone features
    <cache_dir>/decoded-photos/<decode key>/<hh>/<photo digest>.npy    (H, W, 3) uint8, decoded pixels

The key digests everything the array depends on (for features: backbone name, its weights, the eval transform),
the photo digest the file's bytes, so a renamed or re-downloaded photo hits and a changed one misses. An entry is
written to a temporary file and hard-linked into place: readers never see a partial file, and when two processes
(DDP ranks, two runs) compute the same entry, the first one stays and the other is dropped.
"""

from __future__ import annotations

import hashlib
import io
import json
import math
import os
import re
import tempfile
from pathlib import Path

import numpy as np
import torch
from torch import nn

FORMAT = 1  # bump when the entry layout or the way features are computed changes
# The header np.save writes for a C-order array; parsed here because np.load's ast-based parse costs more than
# reading a whole decoded photo (the other layouts, never written by put, still go through np.load).
_NPY_MAGIC = b"\x93NUMPY\x01\x00"
_NPY_HEADER = re.compile(rb"\{'descr': '([<>|=][a-z]\d{1,2})', 'fortran_order': False, 'shape': \(([\d, ]*)\), \} *\n")


def default_cache_dir(chosen: str | Path | None = None) -> Path:
    """`chosen` (a config's cache_dir), else $DEMANDNET_CACHE_DIR, else $XDG_CACHE_HOME/demandnet, else
    ~/.cache/demandnet."""
    if chosen:
        return Path(chosen)
    if os.environ.get("DEMANDNET_CACHE_DIR"):
        return Path(os.environ["DEMANDNET_CACHE_DIR"])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "demandnet"


def _read_npy(path: Path) -> np.ndarray:
    with open(path, "rb") as f:
        data = bytearray(f.read())  # writable, as np.load's arrays are
    header = _NPY_HEADER.fullmatch(data, 10, 10 + int.from_bytes(data[8:10], "little")) if len(data) > 10 else None
    if not data.startswith(_NPY_MAGIC) or header is None:
        return np.load(io.BytesIO(data), allow_pickle=False)
    shape = tuple(int(n) for n in header.group(2).split(b",") if n.strip())
    dtype = np.dtype(header.group(1).decode())
    if len(data) - header.end() != math.prod(shape) * dtype.itemsize:
        raise ValueError(f"{path}: {len(data) - header.end()} bytes of data for shape {shape}")  # cut short
    return np.frombuffer(data, dtype=dtype, offset=header.end()).reshape(shape)


def digest_bytes(data: bytes) -> str:
    return hashlib.blake2b(data, digest_size=16).hexdigest()


def weights_digest(module: nn.Module) -> str:
    """Digest of a module's parameters and buffers (names, dtypes, shapes and values)."""
    h = hashlib.blake2b(digest_size=16)
    for name, tensor in sorted(module.state_dict().items()):
        t = tensor.detach().cpu().contiguous()
        h.update(f"{name}:{t.dtype}:{tuple(t.shape)}".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


def model_key(name: str, backbone: nn.Module, image_config: dict) -> str:
    parts = {"format": FORMAT, "model": name, "weights": weights_digest(backbone), "transform": image_config}
    return digest_bytes(json.dumps(parts, sort_keys=True).encode())


class FeatureStore:
    """Entries of one kind and key; safe to share between processes and runs.

    `shape` is what every entry must be, None for a free dimension (none may be 0): an entry that cannot be read
    or is not of this dtype and shape (cut short, emptied by a crash before it reached the disk, or not ours) is
    removed and reads as absent, so it is computed and written again.
    """

    def __init__(
        self,
        cache_dir: str | Path,
        key: str,
        kind: str = "image-features",
        dtype: np.dtype | type = np.float32,
        shape: tuple[int | None, ...] | None = None,
    ) -> None:
        self.root = Path(cache_dir) / kind / key
        self.dtype = np.dtype(dtype)
        self.shape = shape

    def _path(self, digest: str) -> Path:
        return self.root / digest[:2] / f"{digest}.npy"

    def get(self, digest: str) -> np.ndarray | None:
        path = self._path(digest)
        try:
            entry = _read_npy(path)
        except FileNotFoundError:
            return None
        except Exception:  # noqa: BLE001 unreadable in any way (np.load raises EOFError, ValueError, OSError, ...)
            entry = None
        if isinstance(entry, np.ndarray) and entry.dtype == self.dtype and self._fits(entry.shape):
            return entry
        try:
            path.unlink()  # entries are never replaced, so a broken one must go before put can write it again
        except OSError:
            pass
        return None

    def _fits(self, shape: tuple[int, ...]) -> bool:
        if self.shape is None:
            return True
        return len(shape) == len(self.shape) and all(n > 0 and want in (None, n) for n, want in zip(shape, self.shape))

    def put(self, digest: str, features: np.ndarray) -> None:
        path = self._path(digest)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=".npy")
        try:
            with os.fdopen(fd, "wb") as f:
                np.save(f, np.ascontiguousarray(features, dtype=self.dtype), allow_pickle=False)
            try:
                os.link(tmp, path)  # atomic and never replaces: an entry, once there, is final
            except FileExistsError:
                pass
        finally:
            os.unlink(tmp)
