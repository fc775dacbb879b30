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

# RGB of the colour words in vocab["text"]["colours"] order (красный ... коричневый)
COLOUR_RGB = [(200, 30, 30), (230, 200, 40), (40, 150, 60), (100, 180, 230), (30, 60, 180), (240, 130, 180),
              (235, 235, 235), (30, 30, 30), (128, 128, 128), (120, 75, 40)]
FIXED_RGB = {"black": (25, 25, 28), "white": (246, 246, 242), "glass": (70, 110, 140), "green": (60, 140, 60),
             "brown": (120, 80, 40), "accent": (230, 160, 30)}
# primitives in the object's box [-0.5, 0.5]^2 (x right, y down): (kind, coords, colour role)
SHAPES: dict[str, list] = {
    "dress": [("poly", [(-.15, -.5), (.15, -.5), (.2, -.2), (.45, .5), (-.45, .5), (-.2, -.2)], "main"), ("rect", (-.2, -.22, .2, -.16), "dark")],
    "kidswear": [("ellipse", (-.35, -.3, .35, .5), "main"), ("rect", (-.5, -.3, .5, -.05), "main"), ("ellipse", (-.12, -.5, .12, -.3), "light")],
    "toy": [("ellipse", (-.35, -.2, .35, .5), "main"), ("ellipse", (-.25, -.5, .25, 0), "main"), ("ellipse", (-.3, -.5, -.12, -.32), "dark"),
            ("ellipse", (.12, -.5, .3, -.32), "dark")],
    "bottle": [("rect", (-.25, -.15, .25, .5), "main"), ("rect", (-.1, -.4, .1, -.15), "light"), ("rect", (-.12, -.5, .12, -.4), "dark")],
    "ring": [("ring", (-.45, -.45, .45, .45), "main"), ("ellipse", (-.12, -.58, .12, -.36), "light")],
    "chair": [("rect", (-.4, 0, .4, .12), "main"), ("rect", (-.4, -.5, -.28, 0), "main"), ("rect", (-.38, .12, -.3, .5), "dark"),
              ("rect", (.3, .12, .38, .5), "dark")],
    "tool": [("rect", (-.5, -.12, .2, .12), "main"), ("rect", (.2, -.25, .5, .25), "dark"), ("rect", (-.3, .12, -.1, .5), "black")],
    "appliance": [("rrect", (-.35, -.5, .35, .5), "main"), ("line", (-.35, -.1, .35, -.1), "dark"), ("rect", (.22, -.4, .27, -.2), "dark")],
    "bowl": [("chord", (-.5, -.5, .5, .5), "main"), ("ellipse", (-.5, -.08, .5, .08), "light")],
    "plant": [("poly", [(-.25, .1), (.25, .1), (.18, .5), (-.18, .5)], "brown"), ("ellipse", (-.4, -.5, 0, .1), "green"),
              ("ellipse", (0, -.45, .4, .1), "green"), ("ellipse", (-.15, -.55, .15, -.25), "main")],
    "phone": [("rrect", (-.25, -.5, .25, .5), "black"), ("rect", (-.21, -.42, .21, .38), "main")],
    "screen": [("rect", (-.5, -.4, .5, .25), "black"), ("rect", (-.46, -.36, .46, .21), "main"), ("rect", (-.05, .25, .05, .4), "black"),
               ("rect", (-.25, .4, .25, .45), "black")],
    "device": [("rrect", (-.45, -.3, .45, .3), "main"), ("rect", (-.35, -.2, .1, .05), "dark"), ("ellipse", (.2, -.1, .35, .05), "light")],
    "laptop": [("rect", (-.4, -.45, .4, .1), "black"), ("rect", (-.36, -.41, .36, .06), "main"),
               ("poly", [(-.4, .1), (.4, .1), (.5, .3), (-.5, .3)], "dark")],
    "camera": [("rrect", (-.45, -.25, .45, .35), "main"), ("rect", (-.2, -.4, .1, -.25), "main"), ("ellipse", (-.22, -.17, .22, .27), "black"),
               ("ellipse", (-.12, -.07, .12, .17), "glass")],
    "house": [("rect", (-.4, -.1, .4, .5), "main"), ("poly", [(-.5, -.1), (0, -.5), (.5, -.1)], "dark"), ("rect", (-.28, .05, -.08, .25), "glass"),
              ("rect", (.08, .05, .28, .25), "glass")],
    "land": [("poly", [(-.5, 0), (.4, -.1), (.5, .5), (-.45, .45)], "green"), ("line", (-.5, 0, .4, -.1), "brown"), ("ellipse", (-.1, -.2, .1, 0), "main")],
    "ball": [("ellipse", (-.45, -.45, .45, .45), "main"), ("line", (-.45, 0, .45, 0), "dark"), ("line", (0, -.45, 0, .45), "dark")],
    "bike": [("ring", (-.5, 0, -.1, .4), "black"), ("ring", (.1, 0, .5, .4), "black"), ("line", (-.3, .2, 0, -.15), "main"),
             ("line", (0, -.15, .3, .2), "main"), ("line", (-.3, .2, .1, .2), "main"), ("line", (0, -.15, -.05, -.3), "main")],
    "coin": [("ellipse", (-.4, -.4, .4, .4), "main"), ("ring", (-.3, -.3, .3, .3), "dark")],
    "book": [("rect", (-.35, -.45, .35, .45), "main"), ("rect", (-.35, -.45, -.25, .45), "dark"), ("rect", (-.15, -.3, .25, -.2), "light")],
    "guitar": [("ellipse", (-.3, 0, .3, .5), "main"), ("ellipse", (-.22, -.25, .22, .1), "main"), ("rect", (-.04, -.5, .04, -.15), "dark"),
               ("ellipse", (-.08, .15, .08, .3), "black")],
    "rod": [("line", (-.5, .5, .5, -.5), "dark"), ("ellipse", (-.3, .15, -.1, .35), "main")],
    "ticket": [("rect", (-.5, -.25, .5, .25), "main"), ("line", (.2, -.25, .2, .25), "white"), ("rect", (-.4, -.1, .1, -.04), "dark"),
               ("rect", (-.4, .04, 0, .1), "dark")],
    "car": [("rrect", (-.5, -.05, .5, .3), "main"), ("poly", [(-.3, -.05), (-.15, -.35), (.25, -.35), (.38, -.05)], "main"),
            ("poly", [(-.24, -.07), (-.12, -.3), (.05, -.3), (.05, -.07)], "glass"), ("ellipse", (-.38, .15, -.16, .42), "black"),
            ("ellipse", (.16, .15, .38, .42), "black")],
    "moto": [("ring", (-.5, .05, -.15, .4), "black"), ("ring", (.15, .05, .5, .4), "black"),
             ("poly", [(-.3, .2), (-.1, -.15), (.25, -.15), (.3, .2)], "main"), ("line", (.25, -.15, .35, -.35), "dark")],
    "truck": [("rect", (-.5, -.35, .2, .25), "main"), ("rect", (.2, -.2, .5, .25), "dark"), ("rect", (.28, -.15, .45, 0), "glass"),
              ("ellipse", (-.42, .15, -.22, .4), "black"), ("ellipse", (-.15, .15, .05, .4), "black"), ("ellipse", (.25, .15, .45, .4), "black")],
    "boat": [("chord", (-.5, -.2, .5, .4), "main"), ("line", (0, .1, 0, -.5), "dark"), ("poly", [(.02, -.45), (.35, 0), (.02, 0)], "white")],
    "document": [("rect", (-.35, -.48, .35, .48), "white"), ("rect", (-.28, -.4, .1, -.34), "main")]
    + [("rect", (-.28, y, .28, y + .025), "black") for y in np.arange(-.28, .42, .07).round(3).tolist()],
    "animal": [("ellipse", (-.4, -.1, .3, .4), "main"), ("ellipse", (.15, -.4, .5, -.05), "main"), ("poly", [(.18, -.3), (.22, -.5), (.3, -.35)], "dark"),
               ("poly", [(.35, -.35), (.45, -.5), (.47, -.3)], "dark"), ("ellipse", (.35, -.28, .4, -.23), "black")],
    "bird": [("ellipse", (-.4, -.15, .25, .35), "main"), ("ellipse", (.1, -.4, .4, -.1), "main"), ("poly", [(.38, -.28), (.5, -.24), (.38, -.2)], "accent"),
             ("ellipse", (.27, -.3, .31, -.26), "black")],
    "aquarium": [("rect", (-.5, -.35, .5, .4), "glass"), ("rect", (-.5, -.4, .5, -.35), "black"), ("ellipse", (-.3, -.1, -.1, 0), "main"),
                 ("ellipse", (.1, .05, .3, .15), "accent")],
    "box": [("rect", (-.4, -.35, .4, .4), "main"), ("line", (-.4, -.35, .4, .4), "dark"), ("line", (.4, -.35, -.4, .4), "dark")],
}
NOISE_LEVELS = (3.0, 6.0, 9.0, 13.0)  # std of the sensor-noise textures
BLUR_FACTOR = (1, 4, 10)  # downscale factor of mild and strong blur


@lru_cache(maxsize=1)
def _noise_bank() -> list[Image.Image]:
    """Fixed noise textures (centred on 128) that photos crop from; the same in every process."""
    rng = np.random.default_rng(7)
    return [Image.fromarray(np.clip(128 + s * rng.standard_normal((512, 512, 3)), 0, 255).astype(np.uint8)) for s in NOISE_LEVELS]


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
        box = [min(pts[0][0], pts[1][0]), min(pts[0][1], pts[1][1]), max(pts[0][0], pts[1][0]), max(pts[0][1], pts[1][1])]
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
        draw.text((8, h - 22), f"www.avito.ru/{shop_site}", fill=(240, 240, 240), font=_font(), stroke_width=1, stroke_fill=(60, 60, 60))


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
    if workers <= 1 or len(jobs) < 400:
        _render_batch(str(folder), jobs)
        return
    batches = [jobs[i : i + 250] for i in range(0, len(jobs), 250)]
    with ProcessPoolExecutor(workers, mp_context=get_context("spawn")) as pool:
        list(pool.map(_render_batch, [str(folder)] * len(batches), batches))
