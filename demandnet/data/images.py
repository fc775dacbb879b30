"""Robust, fast photo loading: untrusted image names -> (3, H, W) normalised tensor + has_image flag.

The CSV's `image` value names a file `<image>.jpg` in one of the image folders. Ads without a photo (None, NaN,
empty) are normal input and give zeros with has_image False. A photo that cannot be used (unsafe name, missing
file, unreadable, corrupt or truncated, not an image, too many pixels, a single flat colour) gives the same
fallback, a warning on logger `demandnet.images` (once per name, at most MAX_WARNED_NAMES per process), a line in
`bad_photo_log` when one is given (every bad photo) and a count in `bad_count`; with strict=True it raises a
ValueError naming the file instead.

With `photo_cache_dir`, each photo's decoded pixels (after the reduced-size decode, before any crop) are kept on disk
by the file's content: later epochs read a small array instead of decoding the JPEG again, and get the very same
pixels, so results do not change. Meant for small input sizes (an entry is about H x W x 3 bytes of the decoded
size, 32 KB at the default 64 px); a cache that cannot be written is a warning and decoding goes on.
"""

from __future__ import annotations

import io
import json
import logging
import math
import os
import random
import re
import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import PIL
import torch
from PIL import Image, ImageOps, UnidentifiedImageError

from demandnet.data.feature_store import FeatureStore, digest_bytes
from demandnet.data.image_transforms import build_transform, decode_min_side, resolve_image_config

__all__ = ["ImagePipeline", "decode_image", "find_image_dirs", "resolve_image_config", "scan_image_fields"]

log = logging.getLogger("demandnet.images")

MAX_PIXELS = 40_000_000  # header check before decoding: real ads are <= 480x480, a bigger file is a bomb or junk
FLAT_RANGE = 2  # per-channel max - min at or below this: a single flat colour, no photo content
MAX_WARNED_NAMES = 20  # warn per name up to this many per process, then once more and stay quiet
IMAGE_SUFFIX = ".jpg"
_KNOWN_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp", ".bmp", ".gif")
# A bare file name: no separators, no leading dot (so no '..', no hidden files), no NUL or control characters.
_SAFE_NAME = re.compile(r"[A-Za-z0-9_\-][A-Za-z0-9_.\-]{0,199}")
_KAGGLE_DIRS = (
    "images",
    "train_jpg",
    "test_jpg",
    "data/competition_files/train_jpg",
    "data/competition_files/test_jpg",
)
_MISSING, _UNSAFE = "missing", "unsafe"
MAX_CACHED_FILE_BYTES = 20_000_000  # larger files are decoded from disk, never read whole into memory
DECODE_FORMAT = 1  # bump when decode_image's output changes for the same bytes: old decoded-photo entries then miss


class BadImageError(ValueError):
    """A named photo that exists but cannot be used."""


def _parse_name(name: object) -> tuple[str, str]:
    """(kind, text): kind is 'missing' (no photo), 'unsafe' (rejected value) or 'ok' with the bare name."""
    if name is None or (isinstance(name, (float, np.floating)) and math.isnan(name)):
        return _MISSING, ""
    if isinstance(name, (int, np.integer)) and not isinstance(name, (bool, np.bool_)):
        name = str(name)  # an all-digit name that pandas read as a number
    if not isinstance(name, str):
        return (_MISSING, "") if repr(name) in ("<NA>", "NaT") else (_UNSAFE, repr(name)[:100])
    name = name.strip()
    if not name:
        return _MISSING, ""
    if not _SAFE_NAME.fullmatch(name) or ".." in name:
        return _UNSAFE, repr(name)[:100]
    return "ok", name


def _file_names(name: str) -> list[str]:
    """`<name>.jpg`; a value that already ends in an image suffix is also tried as the file name itself."""
    own = [name] if name.lower().endswith(_KNOWN_SUFFIXES) else []
    return [*own, name + IMAGE_SUFFIX]


def find_image_dirs(root: str | Path) -> list[Path]:
    """Existing Kaggle-layout image folders under `root`, in a fixed order."""
    root = Path(root)
    return [root / sub for sub in _KAGGLE_DIRS if (root / sub).is_dir()]


def _to_rgb(im: Image.Image) -> Image.Image:
    """Any PIL mode -> RGB. Transparency is composited on white (product shots on a clear background)."""
    if im.mode.startswith("I;16") or im.mode in ("I", "F"):
        arr = np.asarray(im, dtype=np.float32)
        scale = 1 / 257 if im.mode.startswith("I;16") else 255 / max(float(arr.max()), 255.0)
        return Image.fromarray(np.clip(arr * scale, 0, 255).astype(np.uint8)).convert("RGB")
    if im.mode == "La":
        im = im.convert("LA")
    if "A" in im.mode or "a" in im.mode or "transparency" in im.info:
        rgba = im.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        im = Image.alpha_composite(white, rgba)
    return im if im.mode == "RGB" else im.convert("RGB")


def decode_key(min_side: int | None) -> str:
    """Key of the decoded-photo cache: everything besides the photo's bytes that decode_image's output depends on."""
    parts = {"format": DECODE_FORMAT, "min_side": min_side, "pil": PIL.__version__, "flat_range": FLAT_RANGE,
             "max_pixels": MAX_PIXELS}  # fmt: skip
    return digest_bytes(json.dumps(parts, sort_keys=True).encode())


def decode_image(path: str | Path | io.BytesIO, min_side: int | None = None) -> np.ndarray:
    """Decode a photo file (or its bytes in a BytesIO) to HxWx3 uint8 RGB; `min_side` lets JPEGs decode at 1/2, 1/4
    or 1/8 scale (draft).

    The short side stays >= min_side. Raises FileNotFoundError when there is no file, BadImageError (or whatever
    PIL raises for a broken file) when it cannot be used.
    """
    with warnings.catch_warnings():
        # PIL warns of big images before the size check below rejects them: one reason, said once, by us
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        with Image.open(path) as im:  # reads only the header
            w, h = im.size
            if w * h > MAX_PIXELS or w < 1 or h < 1:
                raise BadImageError(f"{w}x{h} pixels is outside the accepted size (at most {MAX_PIXELS} pixels)")
            if min_side and im.format == "JPEG" and min(w, h) >= 2 * min_side:
                im.draft("RGB", (min_side, min_side))  # DCT-domain downscale: decodes 4-60x fewer pixels
            im.load()
            try:
                ImageOps.exif_transpose(im, in_place=True)  # phones store rotation as a tag
            except Exception:  # noqa: BLE001 broken EXIF: the pixels are still fine, keep them as stored
                log.debug("ignored unreadable EXIF in %s", path)
            picture = _to_rgb(im)
            rgb = np.asarray(picture)
            # Every 16th pixel first (cheap): any spread there is spread in the picture; only a picture that looks
            # flat there is checked pixel by pixel, so near-blank photos with a little content stay photos.
            sample = rgb[::4, ::4].reshape(-1, 3)
            looks_flat = int((sample.max(axis=0).astype(np.int16) - sample.min(axis=0)).max()) <= FLAT_RANGE
            if looks_flat and max(high - low for low, high in picture.getextrema()) <= FLAT_RANGE:
                raise BadImageError("a single flat colour")
            return rgb


class ImagePipeline:
    """Image name -> ((3, H, W) float32 tensor, has_image). Picklable, holds no open files (DataLoader workers)."""

    def __init__(
        self,
        image_dirs: Sequence[str | Path],
        config: dict,
        train: bool,
        strict: bool = False,
        seed: int = 0,
        bad_photo_log: str | Path | None = None,
        photo_cache_dir: str | Path | None = None,
    ) -> None:
        self.image_dirs = [Path(d) for d in image_dirs]
        missing = [k for k in ("input_size", "mean", "std") if k not in config]
        if missing:
            raise ValueError(f"image config lacks {missing}; build it with resolve_image_config(name)")
        # plain types (also from an OmegaConf DictConfig), so the pipeline pickles and goes into hparams
        self.config = {
            k: (list(v) if isinstance(v, Sequence) and not isinstance(v, str) else v) for k, v in config.items()
        }
        self.train = bool(train)
        self.strict = bool(strict)
        self.seed = int(seed)
        self.min_side = decode_min_side(self.config, self.train)
        self.bad_count = 0  # fallbacks in this process (each worker process keeps its own)
        self._warned: set[str] = set()
        # every bad photo, one line each (item_id, file, reason), appended by whichever process read it
        self.bad_photo_log = str(bad_photo_log) if bad_photo_log else None
        self._listed: set[str] = set()
        self._transform = build_transform(self.config, self.train)
        # decoded pixels by photo content (see the module doc); None: decode every time
        self.photo_cache = (
            FeatureStore(photo_cache_dir, decode_key(self.min_side), "decoded-photos", np.uint8, (None, None, 3))
            if photo_cache_dir
            else None
        )

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        state.pop("_transform")  # rebuilt on unpickle: keeps pickles small and library-version independent
        return state

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self._transform = build_transform(self.config, self.train)

    def _zeros(self) -> torch.Tensor:
        _, h, w = self.config["input_size"]
        return torch.zeros(3, h, w, dtype=torch.float32)

    def _bad(self, key: str, item_id: str, where: str, reason: str) -> tuple[torch.Tensor, bool]:
        if self.strict:
            raise ValueError(f"bad image {where} (item {item_id!r}): {reason}")
        self.bad_count += 1
        if self.bad_photo_log and key not in self._listed:
            self._listed.add(key)
            _append_line(self.bad_photo_log, "\t".join(" ".join(str(v).split()) for v in (item_id, where, reason)))
        if key not in self._warned and len(self._warned) <= MAX_WARNED_NAMES:
            self._warned.add(key)
            if len(self._warned) > MAX_WARNED_NAMES:
                rest = f"the rest are listed in {self.bad_photo_log}" if self.bad_photo_log else "not logging each one"
                log.warning("more than %d bad photos in this process; %s", MAX_WARNED_NAMES, rest)
            else:
                log.warning("bad image %s (item %r): %s; using the no-photo fallback", where, item_id, reason)
        return self._zeros(), False

    def __call__(
        self, name: object, item_id: str = "", augment_key: tuple[int, int] | None = None
    ) -> tuple[torch.Tensor, bool]:
        """`augment_key` (epoch, row) makes a training crop a function of (seed, epoch, row) alone."""
        kind, text = _parse_name(name)
        if kind == _MISSING:
            return self._zeros(), False
        if kind == _UNSAFE:
            return self._bad(text, item_id, f"name {text}", "not a bare file name; nothing was opened")
        for path in self._candidates(text):
            try:
                arr = self._decoded(path)
            except FileNotFoundError:
                continue
            except Exception as e:  # noqa: BLE001 untrusted bytes: PIL raises OSError, SyntaxError, ...
                return self._bad(text, item_id, str(path), f"{type(e).__name__}: {e}")
            if self.train and augment_key is not None:
                entropy = int(np.random.SeedSequence([self.seed, *augment_key]).generate_state(1)[0])
                # one generator pair shared by the transforms: seeding each one costs ~100 us a photo
                self._transform.set_random_state(np.random.default_rng(entropy), random.Random(entropy))
            image = self._transform(image=arr)["image"]
            return image.contiguous(), True
        dirs = ", ".join(str(d) for d in self.image_dirs) or "no image folders configured"
        return self._bad(text, item_id, f"{text}{IMAGE_SUFFIX}", f"file not found in {dirs}")

    def _decoded(self, path: Path) -> np.ndarray:
        """decode_image(path), through the decoded-photo cache when there is one."""
        if self.photo_cache is None:
            return decode_image(path, self.min_side)
        with open(path, "rb") as f:  # FileNotFoundError: the caller tries the next folder
            data = f.read(MAX_CACHED_FILE_BYTES + 1)
        if len(data) > MAX_CACHED_FILE_BYTES:  # no photo of an ad; let the decoder's header checks judge it
            return decode_image(path, self.min_side)
        digest = digest_bytes(data)
        cached = self.photo_cache.get(digest)
        if cached is not None:
            return cached
        try:
            arr = decode_image(io.BytesIO(data), self.min_side)
        except UnidentifiedImageError:
            raise UnidentifiedImageError(f"cannot identify image file {str(path)!r}") from None
        try:
            self.photo_cache.put(digest, arr)
        except OSError as e:
            log.warning("decoded-photo cache %s cannot be written (%s); decoding photos every epoch instead",
                        self.photo_cache.root, e)  # fmt: skip
            self.photo_cache = None
        return arr

    def _candidates(self, text: str) -> list[Path]:
        return [folder / file_name for folder in self.image_dirs for file_name in _file_names(text)]

    def locate(self, name: object) -> Path | None:
        """The file a photo name resolves to, or None (no photo, a rejected name, no such file); opens nothing."""
        kind, text = _parse_name(name)
        if kind != "ok":
            return None
        return next((path for path in self._candidates(text) if path.is_file()), None)


def _append_line(path: str, line: str) -> None:
    """One write with O_APPEND: lines from several processes (workers, DDP ranks) never interleave."""
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o666)
    try:
        os.write(fd, (line + "\n").encode("utf-8"))
    finally:
        os.close(fd)


def scan_image_fields(names: Sequence[object], image_dirs: Sequence[str | Path]) -> tuple[dict[str, int], np.ndarray]:
    """Pre-scan for the setup log: counts of rows, empty fields, named-but-missing files and rejected names, and
    per row whether its photo file is on disk, (N,) bool.

    Lists each folder once (one scandir, ~1 s per million files) instead of one stat per row.
    """
    listed: set[str] = set()
    for folder in image_dirs:
        if os.path.isdir(folder):
            with os.scandir(folder) as entries:
                listed.update(entry.name for entry in entries)
    counts = {"rows": 0, "no_image": 0, "missing_file": 0, "unsafe_name": 0}
    on_disk = np.zeros(len(names), dtype=bool)
    for row, name in enumerate(names):
        counts["rows"] += 1
        kind, text = _parse_name(name)
        if kind == _MISSING:
            counts["no_image"] += 1
        elif kind == _UNSAFE:
            counts["unsafe_name"] += 1
        elif any(file_name in listed for file_name in _file_names(text)):
            on_disk[row] = True
        else:
            counts["missing_file"] += 1
    return counts, on_disk
