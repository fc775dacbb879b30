"""Photos of synthetic ads: an object whose shape comes from the category and whose colour, proportions and scene
come from the image_top_1 code, then the photo's quality (blur, dark or washed-out exposure, near-blank), sensor
noise, an "Avito" watermark in the bottom-right corner and JPEG encoding at Avito sizes (long side <= 480 px).

Each photo is drawn from its own Generator seeded by (data seed, row index), so the pixels do not depend on how
rows are split between worker processes.
"""

from __future__ import annotations

import os
from concurrent.futures import ProcessPoolExecutor
from functools import lru_cache
from multiprocessing import get_context
from pathlib import Path

import numpy as np
from PIL import Image, ImageChops, ImageDraw, ImageFont

from demandnet.progress import progress

# RGB of the colour words in vocab["text"]["colours"] order (красный ... коричневый)
COLOUR_RGB = [
    (200, 30, 30),
    (230, 200, 40),
    (40, 150, 60),
    (100, 180, 230),
    (30, 60, 180),
    (240, 130, 180),
    (235, 235, 235),
    (30, 30, 30),
    (128, 128, 128),
    (120, 75, 40),
]
FIXED_RGB = {
    "black": (25, 25, 28),
    "white": (246, 246, 242),
    "glass": (70, 110, 140),
    "green": (60, 140, 60),
    "brown": (120, 80, 40),
    "accent": (230, 160, 30),
}
# primitives in the object's box [-0.5, 0.5]^2 (x right, y down): (kind, coords, colour role)
SHAPES: dict[str, list] = {
    "dress": [
        ("poly", [(-0.15, -0.5), (0.15, -0.5), (0.2, -0.2), (0.45, 0.5), (-0.45, 0.5), (-0.2, -0.2)], "main"),
        ("rect", (-0.2, -0.22, 0.2, -0.16), "dark"),
    ],
    "kidswear": [
        ("ellipse", (-0.35, -0.3, 0.35, 0.5), "main"),
        ("rect", (-0.5, -0.3, 0.5, -0.05), "main"),
        ("ellipse", (-0.12, -0.5, 0.12, -0.3), "light"),
    ],
    "toy": [
        ("ellipse", (-0.35, -0.2, 0.35, 0.5), "main"),
        ("ellipse", (-0.25, -0.5, 0.25, 0), "main"),
        ("ellipse", (-0.3, -0.5, -0.12, -0.32), "dark"),
        ("ellipse", (0.12, -0.5, 0.3, -0.32), "dark"),
    ],
    "bottle": [
        ("rect", (-0.25, -0.15, 0.25, 0.5), "main"),
        ("rect", (-0.1, -0.4, 0.1, -0.15), "light"),
        ("rect", (-0.12, -0.5, 0.12, -0.4), "dark"),
    ],
    "ring": [("ring", (-0.45, -0.45, 0.45, 0.45), "main"), ("ellipse", (-0.12, -0.58, 0.12, -0.36), "light")],
    "chair": [
        ("rect", (-0.4, 0, 0.4, 0.12), "main"),
        ("rect", (-0.4, -0.5, -0.28, 0), "main"),
        ("rect", (-0.38, 0.12, -0.3, 0.5), "dark"),
        ("rect", (0.3, 0.12, 0.38, 0.5), "dark"),
    ],
    "tool": [
        ("rect", (-0.5, -0.12, 0.2, 0.12), "main"),
        ("rect", (0.2, -0.25, 0.5, 0.25), "dark"),
        ("rect", (-0.3, 0.12, -0.1, 0.5), "black"),
    ],
    "appliance": [
        ("rrect", (-0.35, -0.5, 0.35, 0.5), "main"),
        ("line", (-0.35, -0.1, 0.35, -0.1), "dark"),
        ("rect", (0.22, -0.4, 0.27, -0.2), "dark"),
    ],
    "bowl": [("chord", (-0.5, -0.5, 0.5, 0.5), "main"), ("ellipse", (-0.5, -0.08, 0.5, 0.08), "light")],
    "plant": [
        ("poly", [(-0.25, 0.1), (0.25, 0.1), (0.18, 0.5), (-0.18, 0.5)], "brown"),
        ("ellipse", (-0.4, -0.5, 0, 0.1), "green"),
        ("ellipse", (0, -0.45, 0.4, 0.1), "green"),
        ("ellipse", (-0.15, -0.55, 0.15, -0.25), "main"),
    ],
    "phone": [("rrect", (-0.25, -0.5, 0.25, 0.5), "black"), ("rect", (-0.21, -0.42, 0.21, 0.38), "main")],
    "screen": [
        ("rect", (-0.5, -0.4, 0.5, 0.25), "black"),
        ("rect", (-0.46, -0.36, 0.46, 0.21), "main"),
        ("rect", (-0.05, 0.25, 0.05, 0.4), "black"),
        ("rect", (-0.25, 0.4, 0.25, 0.45), "black"),
    ],
    "device": [
        ("rrect", (-0.45, -0.3, 0.45, 0.3), "main"),
        ("rect", (-0.35, -0.2, 0.1, 0.05), "dark"),
        ("ellipse", (0.2, -0.1, 0.35, 0.05), "light"),
    ],
    "laptop": [
        ("rect", (-0.4, -0.45, 0.4, 0.1), "black"),
        ("rect", (-0.36, -0.41, 0.36, 0.06), "main"),
        ("poly", [(-0.4, 0.1), (0.4, 0.1), (0.5, 0.3), (-0.5, 0.3)], "dark"),
    ],
    "camera": [
        ("rrect", (-0.45, -0.25, 0.45, 0.35), "main"),
        ("rect", (-0.2, -0.4, 0.1, -0.25), "main"),
        ("ellipse", (-0.22, -0.17, 0.22, 0.27), "black"),
        ("ellipse", (-0.12, -0.07, 0.12, 0.17), "glass"),
    ],
    "house": [
        ("rect", (-0.4, -0.1, 0.4, 0.5), "main"),
        ("poly", [(-0.5, -0.1), (0, -0.5), (0.5, -0.1)], "dark"),
        ("rect", (-0.28, 0.05, -0.08, 0.25), "glass"),
        ("rect", (0.08, 0.05, 0.28, 0.25), "glass"),
    ],
    "land": [
        ("poly", [(-0.5, 0), (0.4, -0.1), (0.5, 0.5), (-0.45, 0.45)], "green"),
        ("line", (-0.5, 0, 0.4, -0.1), "brown"),
        ("ellipse", (-0.1, -0.2, 0.1, 0), "main"),
    ],
    "ball": [
        ("ellipse", (-0.45, -0.45, 0.45, 0.45), "main"),
        ("line", (-0.45, 0, 0.45, 0), "dark"),
        ("line", (0, -0.45, 0, 0.45), "dark"),
    ],
    "bike": [
        ("ring", (-0.5, 0, -0.1, 0.4), "black"),
        ("ring", (0.1, 0, 0.5, 0.4), "black"),
        ("line", (-0.3, 0.2, 0, -0.15), "main"),
        ("line", (0, -0.15, 0.3, 0.2), "main"),
        ("line", (-0.3, 0.2, 0.1, 0.2), "main"),
        ("line", (0, -0.15, -0.05, -0.3), "main"),
    ],
    "coin": [("ellipse", (-0.4, -0.4, 0.4, 0.4), "main"), ("ring", (-0.3, -0.3, 0.3, 0.3), "dark")],
    "book": [
        ("rect", (-0.35, -0.45, 0.35, 0.45), "main"),
        ("rect", (-0.35, -0.45, -0.25, 0.45), "dark"),
        ("rect", (-0.15, -0.3, 0.25, -0.2), "light"),
    ],
    "guitar": [
        ("ellipse", (-0.3, 0, 0.3, 0.5), "main"),
        ("ellipse", (-0.22, -0.25, 0.22, 0.1), "main"),
        ("rect", (-0.04, -0.5, 0.04, -0.15), "dark"),
        ("ellipse", (-0.08, 0.15, 0.08, 0.3), "black"),
    ],
    "rod": [("line", (-0.5, 0.5, 0.5, -0.5), "dark"), ("ellipse", (-0.3, 0.15, -0.1, 0.35), "main")],
    "ticket": [
        ("rect", (-0.5, -0.25, 0.5, 0.25), "main"),
        ("line", (0.2, -0.25, 0.2, 0.25), "white"),
        ("rect", (-0.4, -0.1, 0.1, -0.04), "dark"),
        ("rect", (-0.4, 0.04, 0, 0.1), "dark"),
    ],
    "car": [
        ("rrect", (-0.5, -0.05, 0.5, 0.3), "main"),
        ("poly", [(-0.3, -0.05), (-0.15, -0.35), (0.25, -0.35), (0.38, -0.05)], "main"),
        ("poly", [(-0.24, -0.07), (-0.12, -0.3), (0.05, -0.3), (0.05, -0.07)], "glass"),
        ("ellipse", (-0.38, 0.15, -0.16, 0.42), "black"),
        ("ellipse", (0.16, 0.15, 0.38, 0.42), "black"),
    ],
    "moto": [
        ("ring", (-0.5, 0.05, -0.15, 0.4), "black"),
        ("ring", (0.15, 0.05, 0.5, 0.4), "black"),
        ("poly", [(-0.3, 0.2), (-0.1, -0.15), (0.25, -0.15), (0.3, 0.2)], "main"),
        ("line", (0.25, -0.15, 0.35, -0.35), "dark"),
    ],
    "truck": [
        ("rect", (-0.5, -0.35, 0.2, 0.25), "main"),
        ("rect", (0.2, -0.2, 0.5, 0.25), "dark"),
        ("rect", (0.28, -0.15, 0.45, 0), "glass"),
        ("ellipse", (-0.42, 0.15, -0.22, 0.4), "black"),
        ("ellipse", (-0.15, 0.15, 0.05, 0.4), "black"),
        ("ellipse", (0.25, 0.15, 0.45, 0.4), "black"),
    ],
    "boat": [
        ("chord", (-0.5, -0.2, 0.5, 0.4), "main"),
        ("line", (0, 0.1, 0, -0.5), "dark"),
        ("poly", [(0.02, -0.45), (0.35, 0), (0.02, 0)], "white"),
    ],
    "document": [("rect", (-0.35, -0.48, 0.35, 0.48), "white"), ("rect", (-0.28, -0.4, 0.1, -0.34), "main")]
    + [("rect", (-0.28, y, 0.28, y + 0.025), "black") for y in np.arange(-0.28, 0.42, 0.07).round(3).tolist()],
    "animal": [
        ("ellipse", (-0.4, -0.1, 0.3, 0.4), "main"),
        ("ellipse", (0.15, -0.4, 0.5, -0.05), "main"),
        ("poly", [(0.18, -0.3), (0.22, -0.5), (0.3, -0.35)], "dark"),
        ("poly", [(0.35, -0.35), (0.45, -0.5), (0.47, -0.3)], "dark"),
        ("ellipse", (0.35, -0.28, 0.4, -0.23), "black"),
    ],
    "bird": [
        ("ellipse", (-0.4, -0.15, 0.25, 0.35), "main"),
        ("ellipse", (0.1, -0.4, 0.4, -0.1), "main"),
        ("poly", [(0.38, -0.28), (0.5, -0.24), (0.38, -0.2)], "accent"),
        ("ellipse", (0.27, -0.3, 0.31, -0.26), "black"),
    ],
    "aquarium": [
        ("rect", (-0.5, -0.35, 0.5, 0.4), "glass"),
        ("rect", (-0.5, -0.4, 0.5, -0.35), "black"),
        ("ellipse", (-0.3, -0.1, -0.1, 0), "main"),
        ("ellipse", (0.1, 0.05, 0.3, 0.15), "accent"),
    ],
    "box": [
        ("rect", (-0.4, -0.35, 0.4, 0.4), "main"),
        ("line", (-0.4, -0.35, 0.4, 0.4), "dark"),
        ("line", (0.4, -0.35, -0.4, 0.4), "dark"),
    ],
}
NOISE_LEVELS = (3.0, 6.0, 9.0, 13.0)  # std of the sensor-noise textures
BLUR_FACTOR = (1, 4, 10)  # downscale factor of mild and strong blur


@lru_cache(maxsize=1)
def _noise_bank() -> list[Image.Image]:
    """Fixed noise textures (centred on 128) that photos crop from; the same in every process."""
    rng = np.random.default_rng(7)
    return [
        Image.fromarray(np.clip(128 + s * rng.standard_normal((512, 512, 3)), 0, 255).astype(np.uint8))
        for s in NOISE_LEVELS
    ]


@lru_cache(maxsize=1)
def _font() -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    try:
        return ImageFont.load_default(size=15)
    except TypeError:  # Pillow < 10.1 has only the small bitmap font
        return ImageFont.load_default()


def _background(draw: ImageDraw.ImageDraw, rng: np.random.Generator, kind: int, w: int, h: int) -> None:
    light = tuple(int(v) for v in rng.integers(195, 250, 3))
    if kind in (0, 1):  # plain or two-tone table top
        draw.rectangle((0, 0, w, h), fill=light)
        if kind == 1:
            draw.rectangle((0, int(h * 0.7), w, h), fill=tuple(int(v * 0.85) for v in light))
    elif kind == 2:  # room: wall and floor
        draw.rectangle((0, 0, w, h), fill=light)
        draw.rectangle((0, int(h * 0.65), w, h), fill=tuple(int(v) for v in rng.integers(90, 170, 3)))
    else:  # outdoors: sky and ground
        draw.rectangle((0, 0, w, h), fill=(int(rng.integers(120, 190)), int(rng.integers(170, 215)), 235))
        draw.rectangle((0, int(h * 0.55), w, h), fill=(int(rng.integers(60, 120)), int(rng.integers(100, 150)), 60))


def _object(draw: ImageDraw.ImageDraw, rng: np.random.Generator, job: dict) -> None:
    w, h, variant = job["w"], job["h"], job["variant"]
    size = min(w, h) * (0.5 + 0.08 * variant) * rng.uniform(0.9, 1.1)
    bw, bh = size * (0.8 + 0.15 * variant), size * (1.15 - 0.1 * variant)  # the code sets the proportions
    cx, cy = w * rng.uniform(0.42, 0.58), h * rng.uniform(0.42, 0.58)
    main = np.clip(np.array(COLOUR_RGB[job["colour"]]) + rng.integers(-12, 13, 3), 0, 255)
    roles = {"main": main, "dark": main * 0.5, "light": main * 0.5 + 120, **FIXED_RGB}
    width = max(2, int(size * 0.04))

    def xy(points: list) -> list[tuple[float, float]]:
        return [(cx + x * bw, cy + y * bh) for x, y in points]

    for kind, coords, role in SHAPES[job["shape"]]:
        fill = tuple(int(v) for v in roles[role])
        pts = xy(coords) if kind == "poly" else xy([coords[:2], coords[2:]])
        box = [
            min(pts[0][0], pts[1][0]),
            min(pts[0][1], pts[1][1]),
            max(pts[0][0], pts[1][0]),
            max(pts[0][1], pts[1][1]),
        ]
        if kind == "poly":
            draw.polygon(pts, fill=fill)
        elif kind == "rect":
            draw.rectangle(box, fill=fill)
        elif kind == "rrect":
            draw.rounded_rectangle(box, radius=max(1, int(size * 0.06)), fill=fill)
        elif kind == "ellipse":
            draw.ellipse(box, fill=fill)
        elif kind == "ring":
            draw.ellipse(box, outline=fill, width=width)
        elif kind == "chord":
            draw.chord(box, 0, 180, fill=fill)
        else:
            draw.line(pts, fill=fill, width=width)


def _watermark(img: Image.Image, rng: np.random.Generator, shop_site: str) -> None:
    """The white "Avito" mark in the bottom-right corner (and a shop's URL at the bottom-left)."""
    draw = ImageDraw.Draw(img)
    w, h = img.size
    x, y = w - 62, h - 24
    for dx, dy, r in ((0, 2, 4), (9, 0, 3), (5, 9, 3), (13, 9, 2)):  # the logo's four dots
        draw.ellipse((x + dx - r, y + dy - r + 4, x + dx + r, y + dy + r + 4), fill=(250, 250, 250))
    draw.text((x + 19, y), "Avito", fill=(250, 250, 250), font=_font(), stroke_width=1, stroke_fill=(90, 90, 90))
    if shop_site:
        draw.text(
            (8, h - 22),
            f"www.avito.ru/{shop_site}",
            fill=(240, 240, 240),
            font=_font(),
            stroke_width=1,
            stroke_fill=(60, 60, 60),
        )


def render(job: dict) -> Image.Image:
    """One photo from its job description (see write_images); deterministic in job["seed"]."""
    rng = np.random.default_rng(job["seed"])
    w, h = job["w"], job["h"]
    img = Image.new("RGB", (w, h))
    draw = ImageDraw.Draw(img)
    if job["blank"]:  # near-blank upload: mean ~254, std ~2
        draw.rectangle((0, 0, w, h), fill=(253, 253, 253))
        noise = 0
    else:
        _background(draw, rng, job["background"], w, h)
        _object(draw, rng, job)
        noise = int(np.searchsorted(NOISE_LEVELS, job["noise"]).clip(0, len(NOISE_LEVELS) - 1))
    if not job["blank"]:
        if job["blur"]:  # out of focus or shaken: a box-downscale and bilinear upscale (fast, looks like lens blur)
            img = img.reduce(BLUR_FACTOR[job["blur"]]).resize((w, h), Image.BILINEAR)
        if job["exposure"]:
            gain, bias = [(1.0, 0.0), (0.38, 0.0), (0.45, 140.0)][job["exposure"]]  # normal, dark, washed out
            img = img.point([min(255, int(v * gain + bias)) for v in range(256)] * 3)
    ox, oy = rng.integers(0, 512 - w + 1), rng.integers(0, 512 - h + 1)  # sensor noise comes after the optics
    img = ImageChops.add(img, _noise_bank()[noise].crop((ox, oy, ox + w, oy + h)), offset=-128)
    if job["watermark"]:
        _watermark(img, rng, job["shop_site"])
    return img


def _render_batch(folder: str, jobs: list[dict]) -> int:
    for job in jobs:
        render(job).save(os.path.join(folder, job["name"] + ".jpg"), "JPEG", quality=job["quality"])
    return len(jobs)


def default_workers() -> int:
    """Processes for photo rendering: the CPUs this process may use, at most 8."""
    try:
        return max(1, min(8, len(os.sched_getaffinity(0))))
    except AttributeError:  # not on Linux
        return max(1, min(8, os.cpu_count() or 1))


def write_images(folder: Path, jobs: list[dict], workers: int | None = None) -> None:
    """Render and save every job as folder/<name>.jpg, in parallel (spawned processes) for big sets."""
    folder.mkdir(parents=True, exist_ok=True)
    workers = default_workers() if workers is None else workers
    batches = [jobs[i : i + 250] for i in range(0, len(jobs), 250)]
    folders = [str(folder)] * len(batches)
    if workers <= 1 or len(jobs) < 400:
        list(progress(map(_render_batch, folders, batches), "synthetic photos", len(batches), unit="x250"))
        return
    with ProcessPoolExecutor(workers, mp_context=get_context("spawn")) as pool:
        list(progress(pool.map(_render_batch, folders, batches), "synthetic photos", len(batches), unit="x250"))
