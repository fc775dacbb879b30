"""Deterministic synthetic Avito-like data set with a known signal, so the noise floor of any model is known.

`generate(root, n_train, n_test, seed)` writes into root:
    train.csv      the 18 Avito columns (avito-facts.md section 2), missing values as empty fields
    test.csv       the same without deal_probability
    images/<image>.jpg   one photo per row that has an `image` hash
    expected.csv   item_id, expected_deal_probability = E[deal_probability | all features] for train and test rows
    manifest.json  generator version, parameters and counts; written last, so its presence means "complete"
`ensure_synthetic` reuses a complete set with the same parameters or generates one atomically under a file lock.

The latent model is documented in `synthetic_target` (four additive logit components: table, text, photo quality,
photo content; a zero-inflated target whose expectation is computed exactly). Same seed and sizes give
byte-identical CSVs and identical images; nothing is downloaded.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import shutil
import time
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pandas as pd

from demandnet.data import schema
from demandnet.data.synthetic_images import write_images
from demandnet.data.synthetic_table import USER_TYPES, draw_rows
from demandnet.data.synthetic_target import draw, expected, latents, outcome_model
from demandnet.data.synthetic_text import render_texts
from demandnet.data.synthetic_world import World, get_world
from demandnet.progress import progress

log = logging.getLogger(__name__)

GENERATOR_VERSION = 1
CHUNK_ROWS = 20_000  # rows rendered and written at a time; part of the seeding, so it is fixed
COLUMNS = [*schema.COLUMNS, schema.TARGET]  # the 18 train columns in Kaggle's order; test drops the last
FIRST_DAY = date(2017, 3, 15)


def _check(n_train: int, n_test: int, seed: int) -> None:
    for name, value, low in (("n_train", n_train, 1), ("n_test", n_test, 0), ("seed", seed, 0)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
            raise ValueError(f"synthetic data: {name} must be an integer >= {low}, got {value!r}")


def _frame(world: World, rows: dict[str, np.ndarray], texts: dict, a: int, b: int) -> pd.DataFrame:
    """The 17 feature columns of rows a:b as CSV-ready values (None / NaN become empty fields)."""
    sl = slice(a, b)
    leaf, gone = rows["leaf"][sl], rows["p1_missing"][sl]
    has_image = rows["has_image"][sl]
    cats = [world.categories[k] for k in rows["category"][sl]]
    params = {
        f"param_{j}": [
            None if g or not getattr(world.leaves, f"p{j}")[i] else getattr(world.leaves, f"p{j}")[i]
            for i, g in zip(leaf, gone)
        ]
        for j in (1, 2, 3)
    }
    days = [(FIRST_DAY + timedelta(days=d)).isoformat() for d in range(40)]
    image = [
        f"{h[0]:016x}{h[1]:016x}{h[2]:016x}{h[3]:016x}" if ok else None
        for h, ok in zip(rows["image_hash"][sl].tolist(), has_image)
    ]
    return pd.DataFrame(
        {
            "item_id": [f"{x:012x}" for x in rows["item_hex"][sl].tolist()],
            "user_id": [f"{x:012x}" for x in rows["user_hex"][sl].tolist()],
            "region": [world.vocab["regions"][r]["name"] for r in rows["region"][sl]],
            "city": [world.city_names[c] for c in rows["city"][sl]],
            "parent_category_name": [c["parent"] for c in cats],
            "category_name": [c["name"] for c in cats],
            **params,
            "title": texts["title"],
            "description": texts["description"],
            "price": rows["price"][sl],
            "item_seq_number": rows["seq"][sl],
            "activation_date": [days[d] for d in rows["day"][sl]],
            "user_type": [USER_TYPES[t] for t in rows["user_type"][sl]],
            "image": image,
            "image_top_1": np.where(has_image, rows["code"][sl], np.nan).astype(float),
        }
    )


def _image_jobs(world: World, rows: dict[str, np.ndarray], frame_images: list, seed: int) -> list[dict]:
    sites = world.vocab["text"]["sites"]
    jobs = []
    for i in np.flatnonzero(rows["has_image"]).tolist():
        code = int(rows["code"][i])
        jobs.append(
            {
                "name": frame_images[i],
                "seed": [seed, 4, i],
                "w": int(rows["img_w"][i]),
                "h": int(rows["img_h"][i]),
                "shape": world.categories[int(rows["category"][i])]["shape"],
                "colour": int(world.code_colour[code]),
                "variant": int(world.code_variant[code]),
                "background": int(world.code_background[code]),
                "blank": bool(rows["blank"][i]),
                "blur": int(rows["blur"][i]),
                "exposure": int(rows["exposure"][i]),
                "noise": float(rows["noise"][i]),
                "watermark": bool(rows["watermark"][i]),
                "quality": int(rows["jpeg_q"][i]),
                "shop_site": sites[i % len(sites)] if rows["user_type"][i] == 2 and i % 5 < 3 else "",
            }
        )
    return jobs


def generate(root: str | Path, n_train: int, n_test: int, seed: int = 0, with_images: bool = True) -> None:
    """Write a synthetic data set (train.csv, test.csv, images/, expected.csv, manifest.json) into root."""
    _check(n_train, n_test, seed)
    n_train, n_test, seed = int(n_train), int(n_test), int(seed)  # numpy integers are accepted but not JSON
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    world = get_world()
    rows = draw_rows(world, n_train, n_test, seed)
    n = n_train + n_test
    images: list = []
    with (
        open(root / "train.csv", "w", encoding="utf-8", newline="") as f_train,
        open(root / "test.csv", "w", encoding="utf-8", newline="") as f_test,
        open(root / "expected.csv", "w", encoding="utf-8", newline="") as f_exp,
    ):
        starts = range(0, n, CHUNK_ROWS)
        for chunk, a in enumerate(progress(starts, "synthetic rows", len(starts), unit="chunk")):
            b = min(a + CHUNK_ROWS, n)
            texts = render_texts(world, rows, a, b, np.random.default_rng([seed, 2, chunk]))
            parts = latents(world, rows, texts, slice(a, b))
            m = outcome_model(world, sum(parts.values()), rows["category"][a:b], rows["price_missing"][a:b])
            frame = _frame(world, rows, texts, a, b)
            frame["deal_probability"] = draw(np.random.default_rng([seed, 3, chunk]), m)
            images += frame["image"].tolist()
            train = slice(0, max(0, min(b, n_train) - a))
            exp = pd.DataFrame({"item_id": frame["item_id"], "expected_deal_probability": np.round(expected(m), 7)})
            exp.to_csv(f_exp, index=False, header=a == 0, lineterminator="\n")
            frame.iloc[train].to_csv(f_train, index=False, header=a == 0, lineterminator="\n")
            frame.iloc[train.stop :, :-1].to_csv(f_test, index=False, header=a <= n_train < b, lineterminator="\n")
        if n_test == 0:
            f_test.write(",".join(COLUMNS[:-1]) + "\n")
    n_images = int(rows["has_image"].sum()) if with_images else 0
    if with_images:
        write_images(root / "images", _image_jobs(world, rows, images, seed))
    manifest = {
        "generator": "demandnet.data.synthetic",
        "version": GENERATOR_VERSION,
        "params": {"n_train": n_train, "n_test": n_test, "seed": seed, "with_images": with_images},
        "rows": {"train": n_train, "test": n_test},
        "images": n_images,
    }
    (root / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n", encoding="utf-8")


def _complete(root: Path, params: dict) -> bool:
    """True when root holds a finished set generated with exactly these parameters by this generator version."""
    try:
        manifest = json.loads((root / "manifest.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    if manifest.get("version") != GENERATOR_VERSION or manifest.get("params") != params:
        return False
    files = [root / name for name in ("train.csv", "test.csv", "expected.csv")]
    if not all(f.is_file() for f in files):
        return False
    n_images = len(os.listdir(root / "images")) if (root / "images").is_dir() else 0
    return n_images == manifest.get("images")


def ensure_synthetic(root: str | Path, n_train: int, n_test: int, seed: int = 0, with_images: bool = True) -> Path:
    """Return root holding a complete synthetic set with these parameters, generating it if needed.

    Safe for concurrent callers (e.g. DDP ranks): one process generates into a temporary sibling directory under an
    exclusive fcntl lock and renames it into place; the others wait on the lock and then reuse the result.
    """
    _check(n_train, n_test, seed)
    root = Path(root).absolute()
    params = {"n_train": int(n_train), "n_test": int(n_test), "seed": int(seed), "with_images": bool(with_images)}
    if _complete(root, params):
        return root
    root.parent.mkdir(parents=True, exist_ok=True)
    with open(root.parent / f".{root.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes, also if this process dies
        if _complete(root, params):  # another process finished it while we waited
            return root
        # under the lock nobody else is generating: any tmp/old sibling is left over by a process that died
        for stale in root.parent.iterdir():
            if stale.name.startswith((f".{root.name}.tmp-", f".{root.name}.old-")):
                shutil.rmtree(stale, ignore_errors=True)
        tmp = root.parent / f".{root.name}.tmp-{os.getpid()}"
        try:
            started = time.time()
            log.info("generating the default data set (%d train + %d test rows, photos %s) into %s", params["n_train"],
                     params["n_test"], "on" if with_images else "off", root)  # fmt: skip
            generate(tmp, **params)
            log.info("generated %s in %.0f s", root, time.time() - started)
            if root.exists():
                old = root.parent / f".{root.name}.old-{os.getpid()}"
                os.replace(root, old)
                shutil.rmtree(old, ignore_errors=True)
            os.replace(tmp, root)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return root
