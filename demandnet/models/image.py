"""Image branch: a timm backbone's pooled features, a learned stand-in for ads without a photo, and the flag."""

from __future__ import annotations

import logging
from pathlib import Path

import timm
import torch
from torch import Tensor, nn

from demandnet import batch as B

log = logging.getLogger("demandnet.images")


def _load_weights(model: nn.Module, name: str, path: Path) -> None:
    """Load a local timm state dict (.pth/.bin/.safetensors, bare or under 'state_dict'/'model'/EMA keys).

    Classifier weights in the file are dropped (the branch has num_classes=0); any backbone weight missing from
    the file or of the wrong shape is an error, so a wrong file never loads half-way in silence.
    """
    try:
        state = timm.models.load_state_dict(str(path))
    except Exception as e:
        raise RuntimeError(f"could not read image weights file {path}: {type(e).__name__}: {e}") from e
    own = model.state_dict()
    unexpected = [k for k in state if k not in own]
    state = {k: v for k, v in state.items() if k in own}
    # BatchNorm step counters are often stripped from published weights and are unused with momentum set
    missing = [k for k in own if k not in state and not k.endswith("num_batches_tracked")]
    if missing:
        raise RuntimeError(
            f"image weights file {path} does not fit timm model {name!r}: {len(missing)} weights missing "
            f"(e.g. {missing[:3]}); it must be a timm state dict of that architecture"
        )
    try:
        model.load_state_dict({**own, **state}, strict=True)
    except RuntimeError as e:
        raise RuntimeError(f"image weights file {path} does not fit timm model {name!r}: {e}") from e
    if unexpected:
        log.info(
            "ignored %d weights of %s not used by the pooled backbone (e.g. %s)", len(unexpected), path, unexpected[:3]
        )


class ImageBranch(nn.Module):
    """(B, 3, H, W) photos + (B,) has_image -> (B, num_features + 1).

    Rows without a usable photo get a learned stand-in vector instead of the features of a blank image, and the
    flag is appended so the fusion head can tell them apart.
    """

    def __init__(
        self,
        name: str,
        pretrained: bool = False,
        checkpoint_path: str | None = None,
        img_size: int | None = None,
        freeze: bool = False,
        drop_rate: float = 0.0,
        channels_last: bool = False,
        **_: object,
    ) -> None:
        super().__init__()
        self.name = name
        kwargs: dict = {"num_classes": 0}
        if drop_rate:
            kwargs["drop_rate"] = float(drop_rate)  # dropout on the pooled features; not every model takes it
        if img_size is not None:
            kwargs["img_size"] = int(img_size)  # ViT-style models fix their patch grid at build time
        if checkpoint_path:
            path = Path(checkpoint_path).expanduser()
            if not path.is_file():
                raise FileNotFoundError(f"image weights file not found: {path} (model.image.checkpoint_path)")
            self.backbone = _create(name, False, kwargs)
            _load_weights(self.backbone, name, path)
        else:
            self.backbone = _create(name, bool(pretrained), kwargs)
        self.freeze = bool(freeze)
        # NHWC: faster convolutions on GPUs with tensor cores (Ampere and newer), usually slower on CPU
        self.channels_last = bool(channels_last)
        if self.channels_last:
            self.backbone.to(memory_format=torch.channels_last)
        if self.freeze and not (pretrained or checkpoint_path or _.get("weights_from_checkpoint")):
            log.warning("image model %r is frozen with random weights; set pretrained or checkpoint_path", name)
        if self.freeze:
            self.backbone.requires_grad_(False)
            self.backbone.eval()
        # pooled output width: models with a conv head after pooling (MobileNetV3, ...) report it separately
        num_features = int(getattr(self.backbone, "head_hidden_size", None) or self.backbone.num_features)
        self.stand_in = nn.Parameter(torch.randn(num_features) * 0.02)
        self.out_dim = num_features + 1

    def train(self, mode: bool = True) -> ImageBranch:
        super().train(mode)
        if self.freeze:
            self.backbone.eval()  # frozen: BatchNorm running stats and dropout stay as loaded
        return self

    def forward(self, batch: dict[str, Tensor]) -> Tensor:
        has_image = batch[B.HAS_IMAGE]
        if B.IMAGE_FEATURES in batch:  # a frozen backbone's features, computed once (see frozen_features.py)
            features = batch[B.IMAGE_FEATURES].to(self.stand_in.dtype)  # (B, F)
        else:
            images = batch[B.IMAGE]
            if self.channels_last:
                images = images.contiguous(memory_format=torch.channels_last)
            with torch.set_grad_enabled(torch.is_grad_enabled() and not self.freeze):
                features = self.backbone(images)  # (B, 3, H, W) -> (B, F)
        flag = has_image.to(features.dtype).reshape(-1, 1)  # (B,) -> (B, 1)
        stand_in = self.stand_in.to(features.dtype).expand_as(features)
        features = torch.where(flag > 0.5, features, stand_in)  # (B, F)
        return torch.cat([features, flag], dim=1)  # (B, F + 1)


def _create(name: str, pretrained: bool, kwargs: dict) -> nn.Module:
    """timm.create_model; CNNs take any input size and reject img_size, so it is dropped for them."""
    try:
        try:
            return timm.create_model(name, pretrained=pretrained, **kwargs)
        except TypeError as e:
            if "img_size" not in kwargs or "img_size" not in str(e):
                raise
        kwargs = {k: v for k, v in kwargs.items() if k != "img_size"}
        return timm.create_model(name, pretrained=pretrained, **kwargs)
    except OSError as e:  # hub download failed (offline machine, unknown repo)
        if not pretrained:
            raise
        raise RuntimeError(
            f"could not fetch pretrained weights for image model {name!r} ({type(e).__name__}); offline, set "
            "model.image.checkpoint_path=FILE (a local timm state dict) or model.image.pretrained=false"
        ) from e
