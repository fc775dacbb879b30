"""Image preprocessing config from timm's own data config, and the albumentations train/eval transforms.

The config is a plain dict (it goes into hparams and checkpoints):
    {"input_size": [3, H, W], "mean": [r, g, b], "std": [r, g, b], "interpolation": "bicubic", "crop_pct": 0.875}
"""

from __future__ import annotations

import logging
import math
import os

import cv2
import timm
from timm.data import DEFAULT_CROP_PCT, IMAGENET_DEFAULT_MEAN, IMAGENET_DEFAULT_STD

os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")  # albumentations pings PyPI on import; we run offline
import albumentations as A
from albumentations.pytorch import ToTensorV2

log = logging.getLogger("demandnet.images")

# Train crops cover 70-100% of the photo's area: mild, so composition (part of the demand signal) survives.
TRAIN_CROP_SCALE = (0.7, 1.0)
TRAIN_CROP_RATIO = (3 / 4, 4 / 3)

_CV2_INTERPOLATION = {
    "bilinear": cv2.INTER_LINEAR,
    "bicubic": cv2.INTER_CUBIC,
    "nearest": cv2.INTER_NEAREST,
    "lanczos": cv2.INTER_LANCZOS4,
    "area": cv2.INTER_AREA,
}


def _pretrained_cfg(name: str) -> dict | None:
    """timm's pretrained cfg for a model name (with or without a tag), without building the model or downloading."""
    for prefix in ("hf-hub:timm/", "hf_hub:timm/", "timm/"):
        name = name.removeprefix(prefix)  # timm's own hub repos are named after the model and tag
    try:
        cfg = timm.models.get_pretrained_cfg(name)
    except RuntimeError as e:  # a known architecture with an unknown pretrained tag
        raise ValueError(f"image model {name!r}: {e}") from e
    return None if cfg is None else cfg.to_dict()


def resolve_image_config(name: str, img_size: int | None = None) -> dict:
    """Input size, normalisation and eval crop of timm model `name`; `img_size` overrides the input size.

    Names without a timm pretrained cfg (unregistered or hub repos outside timm/) get timm's ImageNet defaults.
    """
    cfg = _pretrained_cfg(name)
    if cfg is None:
        log.warning("no timm pretrained config for image model %r; using ImageNet defaults", name)
        cfg = {}
    args = {}
    if img_size is not None:
        if isinstance(img_size, bool) or not isinstance(img_size, int) or img_size < 8:
            raise ValueError(f"image size must be an integer >= 8, got {img_size!r}")
        args["img_size"] = img_size
    data = timm.data.resolve_data_config(args=args, pretrained_cfg=cfg)
    mean, std = [float(v) for v in data["mean"]], [float(v) for v in data["std"]]
    if len(mean) == 1:  # single-channel stats: the pipeline always feeds RGB
        mean, std = mean * 3, std * 3
    interpolation = str(data["interpolation"])
    return {
        "input_size": [3, int(data["input_size"][1]), int(data["input_size"][2])],
        "mean": mean,
        "std": std,
        "interpolation": interpolation if interpolation in _CV2_INTERPOLATION else "bicubic",
        "crop_pct": float(data.get("crop_pct") or DEFAULT_CROP_PCT),
    }


def default_image_config() -> dict:
    """ImageNet defaults at 224 px, for code paths that have no model name."""
    return {
        "input_size": [3, 224, 224],
        "mean": list(IMAGENET_DEFAULT_MEAN),
        "std": list(IMAGENET_DEFAULT_STD),
        "interpolation": "bicubic",
        "crop_pct": DEFAULT_CROP_PCT,
    }


def _eval_resize_size(config: dict) -> tuple[int, int]:
    """timm eval: resize to input / crop_pct, then centre crop to the input size."""
    _, h, w = config["input_size"]
    crop_pct = float(config.get("crop_pct") or DEFAULT_CROP_PCT)
    return math.floor(h / crop_pct), math.floor(w / crop_pct)


def decode_min_side(config: dict, train: bool) -> int:
    """Shortest side the decoder must deliver so that the transform never upsamples much.

    Train: the smallest crop (area 0.7, ratio 3/4) spans ~0.72 of the short side, so ask for size / 0.72.
    Eval: the resize target, size / crop_pct.
    """
    _, h, w = config["input_size"]
    if train:
        smallest = math.sqrt(TRAIN_CROP_SCALE[0] * TRAIN_CROP_RATIO[0])
        return math.ceil(max(h, w) / smallest)
    return max(_eval_resize_size(config))


def build_transform(config: dict, train: bool) -> A.Compose:
    """HxWx3 uint8 RGB array -> (3, H, W) float32 tensor normalised with the config's mean/std.

    Train: RandomResizedCrop (scale 0.7-1) + horizontal flip; no colour, brightness or blur changes, because photo
    quality is part of what buyers react to. Eval: timm-style resize by crop_pct + centre crop (deterministic).
    Downscaling uses area interpolation (anti-aliased, like PIL's resize that timm uses).
    """
    _, h, w = config["input_size"]
    interp = _CV2_INTERPOLATION.get(str(config.get("interpolation", "bicubic")), cv2.INTER_CUBIC)
    if train:
        geometry = [
            A.RandomResizedCrop(
                size=(h, w),
                scale=TRAIN_CROP_SCALE,
                ratio=TRAIN_CROP_RATIO,
                interpolation=interp,
                area_for_downscale="image",
            ),
            A.HorizontalFlip(p=0.5),
        ]
    else:
        sh, sw = _eval_resize_size(config)
        resize = (
            A.SmallestMaxSize(max_size=sh, interpolation=interp, area_for_downscale="image")
            if h == w
            else A.Resize(sh, sw, interpolation=interp, area_for_downscale="image")
        )
        geometry = [resize, A.CenterCrop(h, w)]
    return A.Compose(
        [*geometry, A.Normalize(mean=config["mean"], std=config["std"], max_pixel_value=255.0), ToTensorV2()]
    )
