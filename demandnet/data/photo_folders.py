"""Where a CSV's photos are read from: the folder given, or the Kaggle-layout folders beside the CSV; and, per row,
whether its photo file is there, with what the folders hold said in the log."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from demandnet.data import schema
from demandnet.data.images import find_image_dirs, scan_image_fields

log = logging.getLogger(__name__)


def photo_folders(names: np.ndarray, path: Path, image_dir: str | None) -> tuple[list[Path], np.ndarray]:
    """(folders, (N,) bool photo file on disk per row) for the image field `names` of the CSV at `path`."""
    if image_dir and not Path(image_dir).is_dir():
        raise schema.DataError(f"image folder not found: {image_dir} (data.image_dir, or image_dir= for predict)")
    dirs = [Path(image_dir)] if image_dir else find_image_dirs(path.parent)
    counts, on_disk = scan_image_fields(names, dirs)
    log.info("images for %s from %s: %s", path.name, [str(d) for d in dirs] or "no image folder", counts)
    named = counts["rows"] - counts["no_image"]
    if named and counts["missing_file"] > named // 2:
        where = [str(d) for d in dirs] or f"no image folder under {path.parent} (set data.image_dir)"
        log.warning("%s: %d of the %d photos it names are not in %s; those rows use the no-photo stand-in",
                    path, counts["missing_file"], named, where)  # fmt: skip
    return dirs, on_disk
