"""Photos/s of demandnet's image path (JPEG draft decode + albumentations) vs a plain full PIL decode + timm resize.

Photos are generated: 480x360 and 360x480 JPEGs of ~30 KB, like Avito's. One thread per process, as in a
DataLoader worker. Prints JSON; benchmarks/run.py puts it into results/latest.json.

    python -m benchmarks.image_decode [--quick] [--photos 200] [--repeats 5]
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
import timm
import torch
from PIL import Image, ImageFilter

from demandnet.data.image_transforms import build_transform
from demandnet.data.images import ImagePipeline, decode_image, resolve_image_config

MODEL = "resnet18"  # any timm name: only its data config (mean/std, crop_pct, bicubic) is used


def make_photo(h: int, w: int, seed: int) -> np.ndarray:
    """Gradients, blobs and fine texture: compresses to ~30 KB at quality 85 for 480x360."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w] / max(h, w)
    base = np.stack([xx, yy, 1 - xx * yy], axis=2) * 180 + 40
    for _ in range(25):
        cy, cx, r = rng.uniform(0, 1), rng.uniform(0, 1), rng.uniform(0.02, 0.2)
        base += ((yy - cy) ** 2 + (xx - cx) ** 2 < r * r)[..., None] * rng.uniform(-60, 60, 3)
    noise = Image.fromarray(rng.integers(0, 255, (h, w), dtype=np.uint8)).filter(ImageFilter.GaussianBlur(1.5))
    texture = np.asarray(noise, np.float32)[..., None] - 128
    return np.clip(base + texture * 0.5, 0, 255).astype(np.uint8)


def write_photos(folder: Path, n: int) -> list[str]:
    names = []
    for i in range(n):
        h, w = (360, 480) if i % 2 == 0 else (480, 360)
        Image.fromarray(make_photo(h, w, i)).save(folder / f"p{i:04d}.jpg", quality=85)
        names.append(f"p{i:04d}")
    return names


def rates(fns: dict[str, Callable[[str], object]], names: list[str], repeats: int) -> dict[str, float]:
    """Median photos/s per method over `repeats` rounds; methods interleave so background load hits all alike."""
    for fn in fns.values():
        for name in names[:20]:  # warm-up
            fn(name)
    seen: dict[str, list[float]] = {key: [] for key in fns}
    for _ in range(repeats):
        for key, fn in fns.items():
            start = time.perf_counter()
            for name in names:
                fn(name)
            seen[key].append(len(names) / (time.perf_counter() - start))
    return {key: statistics.median(values) for key, values in seen.items()}


def measure(quick: bool = False, photos: int | None = None, repeats: int | None = None) -> dict:
    """Per input size, photos/s of each method; `image_decode_speedup` is the eval path's gain at 128 px."""
    photos, repeats = photos or (60 if quick else 200), repeats or (3 if quick else 5)
    torch.set_num_threads(1)
    cv2.setNumThreads(1)
    results: dict = {"photos": photos, "repeats": repeats}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        names = write_photos(folder, photos)
        results["mean_kb"] = round(sum(p.stat().st_size for p in folder.glob("*.jpg")) / len(names) / 1024, 1)
        for size in (64, 128, 224, 384):
            cfg = resolve_image_config(MODEL, img_size=size)
            ours, ours_train = ImagePipeline([folder], cfg, train=False), ImagePipeline([folder], cfg, train=True)
            no_draft_tf = build_transform(cfg, train=False)
            plain_tf = timm.data.create_transform(
                input_size=tuple(cfg["input_size"]),
                interpolation=cfg["interpolation"],
                mean=tuple(cfg["mean"]),
                std=tuple(cfg["std"]),
                crop_pct=cfg["crop_pct"],
                is_training=False,
            )

            def plain(name: str, tf: Callable = plain_tf) -> torch.Tensor:
                with Image.open(folder / f"{name}.jpg") as im:
                    return tf(im.convert("RGB"))

            def no_draft(name: str, tf: Callable = no_draft_tf) -> torch.Tensor:
                return tf(image=decode_image(folder / f"{name}.jpg"))["image"]

            methods = {
                "demandnet_eval": ours,
                "demandnet_train": ours_train,
                "demandnet_eval_no_draft": no_draft,
                "plain_pil_full_decode_timm_resize": plain,
            }
            row = rates(methods, names, repeats)
            row["speedup_eval_vs_plain"] = row["demandnet_eval"] / row["plain_pil_full_decode_timm_resize"]
            results[str(size)] = {k: round(v, 1) if "speedup" not in k else round(v, 2) for k, v in row.items()}
    speedups = {size: results[str(size)]["speedup_eval_vs_plain"] for size in (64, 128, 224, 384)}
    return {
        "image_decode_speedup": speedups[128],
        "image_decode_speedup_by_size": speedups,
        "image_decode_min_speedup": min(speedups.values()),
        "image_decode_detail": results,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--photos", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    print(json.dumps(measure(args.quick, args.photos, args.repeats), indent=2))


if __name__ == "__main__":
    main()
