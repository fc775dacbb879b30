"""Photos/s of demandnet's image path (JPEG draft decode + albumentations) vs a plain full PIL decode + timm resize.

Photos are generated: 480x360 and 360x480 JPEGs of ~30 KB, like Avito's. One thread per process, as in a
DataLoader worker. Prints a table and writes JSON (default benchmarks/results/image_decode.json).

    python benchmarks/image_decode.py [--photos 200] [--repeats 5] [--out FILE]
"""

from __future__ import annotations

import argparse
import json
import platform
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--photos", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "image_decode.json"))
    args = parser.parse_args()
    torch.set_num_threads(1)
    cv2.setNumThreads(1)
    results: dict = {"photos": args.photos, "repeats": args.repeats, "machine": platform.processor() or "?"}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        names = write_photos(folder, args.photos)
        results["mean_kb"] = round(sum(p.stat().st_size for p in folder.glob("*.jpg")) / len(names) / 1024, 1)
        for size in (64, 128, 224):
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
            row = rates(methods, names, args.repeats)
            row["speedup_eval_vs_plain"] = row["demandnet_eval"] / row["plain_pil_full_decode_timm_resize"]
            results[str(size)] = {k: round(v, 1) if "speedup" not in k else round(v, 2) for k, v in row.items()}
            print(f"{size:>4} px  " + "  ".join(f"{k}={v}" for k, v in results[str(size)].items()), flush=True)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2))
    print(f"mean file size {results['mean_kb']} KB; wrote {out}")


if __name__ == "__main__":
    main()
