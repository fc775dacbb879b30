"""Photo loading (config, decode, transforms, fallbacks) and the image branch, on photos generated in tmp_path."""

from __future__ import annotations

import json
import logging
import os
import pickle
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import timm
import torch
from PIL import Image

from demandnet.data import images as images_mod
from demandnet.data.image_transforms import build_transform
from demandnet.data.images import (
    BadImageError,
    ImagePipeline,
    decode_image,
    find_image_dirs,
    resolve_image_config,
    scan_image_fields,
)
from demandnet.models.image import ImageBranch
from tests.photos import bomb, photo, save, truncated

TINY = "test_resnet"  # ~0.4M parameters, builds in milliseconds
CFG = resolve_image_config(TINY, img_size=32)


@pytest.fixture
def image_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "images"
    folder.mkdir()
    save(folder, "good")
    return folder


def test_resolve_image_config_known_model_and_override() -> None:
    cfg = resolve_image_config("resnet10t")
    assert cfg == {
        "input_size": [3, 176, 176],
        "mean": [0.485, 0.456, 0.406],
        "std": [0.229, 0.224, 0.225],
        "interpolation": "bicubic",
        "crop_pct": 0.875,
    }
    assert resolve_image_config("test_resnet")["mean"] == [0.5, 0.5, 0.5]
    assert resolve_image_config("resnet10t", img_size=64)["input_size"] == [3, 64, 64]
    assert resolve_image_config("hf-hub:timm/resnet18.a1_in1k")["crop_pct"] == 0.95
    assert json.loads(json.dumps(cfg)) == cfg  # plain types only


def test_resolve_image_config_fallbacks_and_errors() -> None:
    cfg = resolve_image_config("no_such_model_xyz", img_size=96)
    assert cfg["input_size"] == [3, 96, 96] and cfg["mean"] == [0.485, 0.456, 0.406]
    with pytest.raises(ValueError, match="resnet18"):
        resolve_image_config("resnet18.no_such_tag")
    with pytest.raises(ValueError, match="image size"):
        resolve_image_config("resnet18", img_size=0)


def test_eval_transform_deterministic_shape_dtype(image_dir: Path) -> None:
    pipe = ImagePipeline([image_dir], CFG, train=False)
    a, has_a = pipe("good")
    b, _ = pipe("good")
    assert has_a and a.shape == (3, 32, 32) and a.dtype == torch.float32
    assert torch.equal(a, b)
    wide = ImagePipeline([image_dir], {**CFG, "input_size": [3, 24, 40]}, train=False)
    assert wide("good")[0].shape == (3, 24, 40)


def test_train_transform_is_random_but_mild(image_dir: Path) -> None:
    train, evaluate = ImagePipeline([image_dir], CFG, train=True), ImagePipeline([image_dir], CFG, train=False)
    outs = [train("good")[0] for _ in range(6)]
    assert all(o.shape == (3, 32, 32) for o in outs)
    assert any(not torch.equal(outs[0], o) for o in outs[1:])
    # geometry only (photo quality is signal): no colour, brightness or blur transforms
    kinds = {type(t).__name__ for t in build_transform(CFG, train=True).transforms}
    assert kinds == {"RandomResizedCrop", "HorizontalFlip", "Normalize", "ToTensorV2"}
    assert evaluate("good")[0].shape == outs[0].shape


def test_draft_decode_matches_full_decode(image_dir: Path) -> None:
    path = image_dir / "good.jpg"
    fast, full = decode_image(path, min_side=73), decode_image(path)
    assert full.shape == (360, 480, 3) and fast.shape == (90, 120, 3)  # JPEG decoded at 1/4 scale
    transform = build_transform(CFG, train=False)
    diff = (transform(image=fast)["image"] - transform(image=full)["image"]).abs().mean().item()
    assert diff < 0.05, diff  # normalised units (std 0.5): under ~1.3 grey levels of 255


def test_png_named_jpg_decodes(image_dir: Path) -> None:
    save(image_dir, "png", fmt="PNG")
    assert ImagePipeline([image_dir], CFG, train=False)("png")[1] is True


@pytest.mark.parametrize(
    ("mode", "fmt"),
    [("L", "JPEG"), ("LA", "PNG"), ("P", "PNG"), ("RGBA", "PNG"), ("CMYK", "JPEG"), ("I;16", "PNG"), ("1", "PNG")],
)
def test_odd_modes_decode_to_rgb(image_dir: Path, mode: str, fmt: str) -> None:
    save(image_dir, "odd", fmt=fmt, mode=mode)
    with Image.open(image_dir / "odd.jpg") as im:
        assert im.mode.startswith(mode)
    assert decode_image(image_dir / "odd.jpg").shape == (360, 480, 3)
    image, has = ImagePipeline([image_dir], CFG, train=False)("odd")
    assert has and image.shape == (3, 32, 32) and torch.isfinite(image).all()


def test_transparent_pixels_become_white(image_dir: Path) -> None:
    rgba = np.concatenate([photo(), np.full((360, 480, 1), 255, np.uint8)], axis=2)
    rgba[:, :240, 3] = 0  # left half fully transparent (its hidden colour is the photo's)
    Image.fromarray(rgba, "RGBA").save(image_dir / "clear.jpg", format="PNG")
    assert (decode_image(image_dir / "clear.jpg")[:, :240] == 255).all()


BROKEN = {
    "missing": lambda folder: None,
    "empty": lambda folder: (folder / "t.jpg").write_bytes(b""),
    "truncated": lambda folder: truncated(folder, "t"),
    "truncated-progressive": lambda folder: truncated(folder, "t", progressive=True),
    "html": lambda folder: (folder / "t.jpg").write_text("<html><body>404 Not Found</body></html>"),
    "flat": lambda folder: save(folder, "t", np.full((360, 480, 3), 200, np.uint8)),
    "bomb": lambda folder: bomb(folder, "t"),
    "directory": lambda folder: (folder / "t.jpg").mkdir(),
}


@pytest.mark.parametrize("kind", sorted(BROKEN))
def test_bad_photo_falls_back_logs_once_and_counts(
    image_dir: Path, kind: str, caplog: pytest.LogCaptureFixture
) -> None:
    BROKEN[kind](image_dir)
    pipe = ImagePipeline([image_dir], CFG, train=True)
    with caplog.at_level(logging.WARNING, logger="demandnet.images"):
        results = [pipe("t", item_id="item42") for _ in range(2)]
    for image, has in results:
        assert has is False and image.shape == (3, 32, 32) and not image.any()
    assert pipe.bad_count == 2
    warnings = [r.getMessage() for r in caplog.records if r.name == "demandnet.images"]
    assert len(warnings) == 1 and "item42" in warnings[0] and "t.jpg" in warnings[0]
    with pytest.raises(ValueError, match=r"t\.jpg"):
        ImagePipeline([image_dir], CFG, train=False, strict=True)("t", item_id="item42")


def test_unsafe_names_never_open_files(tmp_path: Path, image_dir: Path, caplog: pytest.LogCaptureFixture) -> None:
    outside = save(tmp_path, "secret")  # a valid photo next to, not inside, the image folder
    names = ["../secret", str(outside.with_suffix("")), str(outside), "a/b", "a\\b", "x\x00y", ".hidden", "..", 3.5]
    pipe = ImagePipeline([image_dir], CFG, train=False)
    with caplog.at_level(logging.WARNING, logger="demandnet.images"):
        assert all(pipe(n)[1] is False for n in names)
    assert pipe.bad_count == len(names) and len(caplog.records) == len(names)
    with pytest.raises(ValueError, match="secret"):
        ImagePipeline([image_dir], CFG, train=False, strict=True)("../secret")


@pytest.mark.parametrize("name", [None, float("nan"), np.float32("nan"), "", "   ", pd.NA])
def test_no_photo_is_silent(image_dir: Path, name: object, caplog: pytest.LogCaptureFixture) -> None:
    pipe = ImagePipeline([image_dir], CFG, train=False, strict=True)
    with caplog.at_level(logging.DEBUG, logger="demandnet.images"):
        image, has = pipe(name)
    assert has is False and not image.any() and pipe.bad_count == 0 and not caplog.records


def test_numeric_name_and_several_dirs(tmp_path: Path, image_dir: Path) -> None:
    other = tmp_path / "test_jpg"
    other.mkdir()
    save(other, "123")
    pipe = ImagePipeline([image_dir, other], CFG, train=False)
    assert pipe(123)[1] and pipe(np.int64(123))[1] and pipe("good")[1]


def test_warnings_are_capped(image_dir: Path, caplog: pytest.LogCaptureFixture, monkeypatch) -> None:
    monkeypatch.setattr(images_mod, "MAX_WARNED_NAMES", 3)
    pipe = ImagePipeline([image_dir], CFG, train=False)
    with caplog.at_level(logging.WARNING, logger="demandnet.images"):
        for i in range(6):
            pipe(f"gone{i}")
    assert pipe.bad_count == 6 and len(caplog.records) == 4 and "not logging" in caplog.records[-1].getMessage()


def test_pipeline_pickles_and_holds_no_files(image_dir: Path) -> None:
    pipe = ImagePipeline([image_dir], CFG, train=False)
    fds = len(os.listdir("/proc/self/fd")) if os.path.isdir("/proc/self/fd") else None
    expected = pipe("good")[0]
    if fds is not None:
        assert len(os.listdir("/proc/self/fd")) == fds
    clone = pickle.loads(pickle.dumps(pipe))
    assert torch.equal(clone("good")[0], expected)


def test_find_image_dirs(tmp_path: Path) -> None:
    for sub in ("test_jpg", "data/competition_files/train_jpg", "unrelated"):
        (tmp_path / sub).mkdir(parents=True)
    assert find_image_dirs(tmp_path) == [tmp_path / "test_jpg", tmp_path / "data/competition_files/train_jpg"]
    assert find_image_dirs(tmp_path / "nowhere") == []


def test_scan_image_fields(image_dir: Path) -> None:
    names = pd.Series(["good", None, "", "gone", "../good", float("nan"), "good"], dtype=object)
    counts, on_disk = scan_image_fields(names, [image_dir, image_dir.parent / "absent"])
    assert counts == {"rows": 7, "no_image": 3, "missing_file": 1, "unsafe_name": 1}
    assert all(type(v) is int for v in counts.values())
    assert on_disk.tolist() == [True, False, False, False, False, False, True]  # only the files that are there


def batch(n_with: int = 2, n_without: int = 2, size: int = 32) -> dict[str, torch.Tensor]:
    images = torch.randn(n_with + n_without, 3, size, size)
    images[n_with:] = 0
    has = torch.tensor([1.0] * n_with + [0.0] * n_without)
    return {"image": images, "has_image": has}


@pytest.mark.parametrize("name", ["test_resnet", "test_efficientnet", "test_vit"])
def test_branch_shapes_and_gradients(name: str) -> None:
    branch = ImageBranch(name, img_size=32, drop_rate=0.1)
    out = branch(batch())
    assert out.shape == (4, branch.out_dim) and torch.isfinite(out).all()
    assert torch.equal(out[:, -1], torch.tensor([1.0, 1.0, 0.0, 0.0]))
    out.square().mean().backward()
    missing = [n for n, p in branch.named_parameters() if p.requires_grad and p.grad is None]
    assert not missing, missing
    # some grads are exactly 0 by design (timm zero-initialises the last norm of residual blocks); these are not
    assert branch.stand_in.grad.any() and next(branch.backbone.parameters()).grad.any()


def test_branch_stand_in_replaces_blank_features() -> None:
    branch = ImageBranch(TINY).eval()
    b = batch()
    out = branch(b)
    zero_features = branch.backbone(b["image"][2:])
    assert torch.allclose(out[2:, :-1], branch.stand_in.expand(2, -1))
    assert not torch.allclose(out[2:, :-1], zero_features, atol=1e-3)
    assert torch.allclose(out[:2, :-1], branch.backbone(b["image"][:2]), atol=1e-5)


def test_branch_freeze_keeps_batchnorm_stats() -> None:
    branch = ImageBranch(TINY, freeze=True).train()
    bn = next(m for m in branch.backbone.modules() if isinstance(m, torch.nn.BatchNorm2d))
    before = bn.running_mean.clone()
    out = branch(batch())
    assert not branch.backbone.training and torch.equal(bn.running_mean, before)
    assert [n for n, p in branch.named_parameters() if p.requires_grad] == ["stand_in"]
    out.sum().backward()
    assert branch.stand_in.grad is not None


@pytest.mark.parametrize("fmt", ["pth", "safetensors"])
def test_branch_loads_checkpoint_file(tmp_path: Path, fmt: str) -> None:
    source = timm.create_model(TINY, num_classes=7)  # with a classifier, as published weights come
    path = tmp_path / f"weights.{fmt}"
    if fmt == "pth":
        torch.save({"state_dict": source.state_dict()}, path)
    else:  # hub style: bare tensors, BatchNorm step counters stripped
        safetensors = pytest.importorskip("safetensors.torch")
        safetensors.save_file({k: v for k, v in source.state_dict().items() if "num_batches" not in k}, str(path))
    branch = ImageBranch(TINY, pretrained=True, checkpoint_path=str(path))
    for key, value in branch.backbone.state_dict().items():
        if "num_batches" not in key:
            assert torch.equal(value, source.state_dict()[key]), key
    rebuilt = ImageBranch(TINY, pretrained=False, checkpoint_path=None)
    rebuilt.load_state_dict(branch.state_dict())
    b = batch()
    assert torch.equal(rebuilt.eval()(b), branch.eval()(b))


def test_branch_checkpoint_errors(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="nope.pth"):
        ImageBranch(TINY, checkpoint_path=str(tmp_path / "nope.pth"))
    other = tmp_path / "other.pth"
    torch.save(timm.create_model("test_efficientnet").state_dict(), other)
    with pytest.raises(RuntimeError, match="other.pth"):
        ImageBranch(TINY, checkpoint_path=str(other))


REAL = Path(__file__).resolve().parents[2] / "shared" / "data" / "avito-real"


@pytest.mark.skipif(not (REAL / "images").is_dir(), reason="real Avito excerpt not available")
def test_real_avito_photos_all_decode() -> None:
    dirs = find_image_dirs(REAL)
    names = sorted(p.stem for p in (REAL / "images").glob("*.jpg"))
    pipe = ImagePipeline(dirs, CFG, train=True)
    assert names and all(pipe(n)[1] for n in names)  # the near-blank real photo is not 'flat'
    counts, _ = scan_image_fields(pd.read_csv(REAL / "train.csv")["image"], dirs)
    assert counts["rows"] == 49 and counts["no_image"] == 4 and counts["unsafe_name"] == 0


def test_a_near_blank_photo_with_a_little_content_is_a_photo(tmp_path: Path) -> None:
    """The flat check samples every 16th pixel first; a spot between the samples must still count."""
    arr = np.full((360, 480, 3), 200, dtype=np.uint8)
    arr[1:3, 1:3] = 40  # between the sampled rows and columns (0, 4, 8, ...)
    path = save(tmp_path, "spot", arr, fmt="PNG")
    assert decode_image(path).shape == (360, 480, 3)
    with pytest.raises(BadImageError, match="flat"):
        decode_image(save(tmp_path, "flat", np.full((360, 480, 3), 200, dtype=np.uint8), fmt="PNG"))
