"""Photo files for tests: photo-like JPEGs, odd modes and formats, and the broken files real ad data holds."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from PIL import Image


def photo(h: int = 360, w: int = 480, seed: int = 0) -> np.ndarray:
    """A smooth photo-like RGB array: gradients, a few blobs and mild noise."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w] / max(h, w)
    base = np.stack([xx, yy, 1 - xx * yy], axis=2) * 180 + 40
    for _ in range(6):
        cy, cx, r = rng.uniform(0, 1), rng.uniform(0, 1), rng.uniform(0.05, 0.2)
        base += ((yy - cy) ** 2 + (xx - cx) ** 2 < r * r)[..., None] * rng.uniform(-60, 60, 3)
    return np.clip(base + rng.normal(0, 4, base.shape), 0, 255).astype(np.uint8)


def save(
    folder: Path, name: str, arr: np.ndarray | None = None, fmt: str = "JPEG", mode: str = "RGB", **options: object
) -> Path:
    """`folder/<name>.jpg`, whatever its real format (as photo folders hold PNGs and WebPs named .jpg)."""
    path = folder / f"{name}.jpg"
    im = Image.fromarray(photo() if arr is None else arr)
    if mode == "I;16":
        im = Image.fromarray(np.asarray(im.convert("L"), np.uint16) * 257)
    elif mode == "P-transparent":
        im = im.convert("P")
        options["transparency"] = 0
    elif mode != "RGB":
        im = im.convert(mode)
    if fmt == "JPEG":
        options.setdefault("quality", 85)
    im.save(path, format=fmt, **options)
    return path


def truncated(folder: Path, name: str, progressive: bool = False) -> Path:
    """A JPEG cut off halfway, as an interrupted download leaves it."""
    path = save(folder, name, progressive=progressive)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    return path


def bomb(folder: Path, name: str) -> Path:
    """A valid small JPEG whose header claims 10000x8000 pixels (a decompression bomb's shape)."""
    buf = io.BytesIO()
    Image.fromarray(photo(64, 64)).save(buf, format="JPEG")
    data = bytearray(buf.getvalue())
    sof = data.index(b"\xff\xc0")
    data[sof + 5 : sof + 9] = (8000).to_bytes(2, "big") + (10000).to_bytes(2, "big")
    path = folder / f"{name}.jpg"
    path.write_bytes(bytes(data))
    return path
