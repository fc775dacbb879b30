"""The decoded-photo cache (data.photo_cache): the same tensors as decoding, entries by content, bad photos and
bad cache folders handled as without it."""

from __future__ import annotations

import io
import logging
import os
import stat
from pathlib import Path

import numpy as np
import pytest
import torch

from demandnet.data.datamodule import DemandDataModule
from demandnet.data.images import ImagePipeline, decode_image
from tests.photos import photo, save
from tests.test_images import BROKEN, CFG


def _entries(cache: Path) -> list[Path]:
    return sorted((cache / "decoded-photos").rglob("*.npy"))


@pytest.fixture
def photos(tmp_path: Path) -> Path:
    folder = tmp_path / "images"
    folder.mkdir()
    for i in range(4):
        save(folder, f"p{i}", photo(seed=i))
    return folder


@pytest.mark.parametrize("train", [True, False])
def test_cached_tensors_equal_decoded_ones_on_miss_and_hit(photos: Path, tmp_path: Path, train: bool) -> None:
    cache = tmp_path / "cache"
    plain = ImagePipeline([photos], CFG, train=train, seed=7)
    cached = ImagePipeline([photos], CFG, train=train, seed=7, photo_cache_dir=cache)
    for epoch in range(2):  # epoch 0 fills the cache, epoch 1 reads it
        for row in range(4):
            want, has = plain(f"p{row}", augment_key=(epoch, row))
            got, cached_has = cached(f"p{row}", augment_key=(epoch, row))
            assert has and cached_has and torch.equal(want, got)
        assert len(_entries(cache)) == 4
    decoded = np.load(_entries(cache)[0])
    assert decoded.dtype == np.uint8 and decoded.ndim == 3 and decoded.shape[2] == 3


def test_a_hit_does_not_decode(photos: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pipe = ImagePipeline([photos], CFG, train=False, photo_cache_dir=tmp_path / "cache")
    first, _ = pipe("p0")
    monkeypatch.setattr("demandnet.data.images.decode_image", lambda *a, **k: pytest.fail("decoded again"))
    again, _ = pipe("p0")
    assert torch.equal(first, again)


def test_a_changed_photo_misses_and_a_copy_hits(photos: Path, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    pipe = ImagePipeline([photos], CFG, train=False, photo_cache_dir=cache)
    before, _ = pipe("p0")
    save(photos, "p0", photo(seed=99))  # same name, other content
    after, _ = pipe("p0")
    assert not torch.equal(before, after)
    assert torch.equal(after, ImagePipeline([photos], CFG, train=False)("p0")[0])
    assert len(_entries(cache)) == 2
    (photos / "copy.jpg").write_bytes((photos / "p0.jpg").read_bytes())  # same bytes, other name: no new entry
    pipe("copy")
    assert len(_entries(cache)) == 2


def test_entries_depend_on_the_decode_size(photos: Path, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    ImagePipeline([photos], CFG, train=False, photo_cache_dir=cache)("p0")
    ImagePipeline([photos], {**CFG, "input_size": [3, 160, 160]}, train=False, photo_cache_dir=cache)("p0")
    keys = {p.parent.parent.name for p in _entries(cache)}
    assert len(keys) == 2
    shapes = sorted(np.load(p).shape for p in _entries(cache))
    assert shapes[0] != shapes[1]


@pytest.mark.parametrize("kind", sorted(BROKEN))
def test_bad_photos_fall_back_every_time_and_are_not_cached(photos: Path, tmp_path: Path, kind: str) -> None:
    BROKEN[kind](photos)
    cache = tmp_path / "cache"
    pipe = ImagePipeline([photos], CFG, train=True, photo_cache_dir=cache)
    for _ in range(2):
        image, has = pipe("t", item_id="item42")
        assert has is False and not image.any()
    assert pipe.bad_count == 2 and _entries(cache) == []
    with pytest.raises(ValueError, match=r"t\.jpg"):
        ImagePipeline([photos], CFG, train=False, strict=True, photo_cache_dir=cache)("t", item_id="item42")


def _npy(arr: object) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, arr)
    return buffer.getvalue()


def _npz() -> bytes:
    buffer = io.BytesIO()
    np.savez(buffer, a=np.zeros((4, 4, 3), np.uint8))
    return buffer.getvalue()


BROKEN_ENTRIES = {
    "empty": lambda good: b"",  # linked, then lost in a crash before it reached the disk
    "cut short": lambda good: good[:40],
    "half": lambda good: good[: len(good) // 2],
    "random bytes": lambda good: np.random.default_rng(0).bytes(len(good)),
    "float64": lambda good: _npy(np.zeros((90, 120, 3))),
    "bool": lambda good: _npy(np.zeros((90, 120, 3), bool)),
    "no rows": lambda good: _npy(np.zeros((0, 120, 3), np.uint8)),
    "4 channels": lambda good: _npy(np.zeros((90, 120, 4), np.uint8)),
    "npz": lambda good: _npz(),
}


@pytest.mark.parametrize("kind", sorted(BROKEN_ENTRIES))
def test_a_broken_entry_is_decoded_again_and_replaced(photos: Path, tmp_path: Path, kind: str) -> None:
    cache = tmp_path / "cache"
    want, _ = ImagePipeline([photos], CFG, train=False, photo_cache_dir=cache)("p1")
    (entry,) = _entries(cache)
    good = entry.read_bytes()
    entry.write_bytes(BROKEN_ENTRIES[kind](good))
    pipe = ImagePipeline([photos], CFG, train=False, strict=True, photo_cache_dir=cache)
    got, has = pipe("p1")
    assert has and torch.equal(want, got) and pipe.bad_count == 0
    assert entry.read_bytes() == good  # written again, so later runs read it


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_an_unwritable_cache_is_a_warning(photos: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    cache = tmp_path / "cache"
    cache.mkdir()
    cache.chmod(stat.S_IRUSR | stat.S_IXUSR)
    try:
        pipe = ImagePipeline([photos], CFG, train=False, photo_cache_dir=cache)
        with caplog.at_level(logging.WARNING, logger="demandnet.images"):
            got = [pipe(f"p{i}")[0] for i in range(3)]
    finally:
        cache.chmod(stat.S_IRWXU)
    plain = ImagePipeline([photos], CFG, train=False)
    assert all(torch.equal(g, plain(f"p{i}")[0]) for i, g in enumerate(got))
    assert [r.getMessage() for r in caplog.records if "cannot be written" in r.getMessage()] != []
    assert pipe.photo_cache is None  # warned once, then decoding as without a cache


def test_a_file_as_cache_dir_is_a_warning(photos: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("x")  # works as root too: nothing can be made under a file
    pipe = ImagePipeline([photos], CFG, train=False, photo_cache_dir=blocker)
    with caplog.at_level(logging.WARNING, logger="demandnet.images"):
        image, has = pipe("p2")
    assert has and torch.equal(image, ImagePipeline([photos], CFG, train=False)("p2")[0])
    assert any("cannot be written" in r.getMessage() for r in caplog.records)


def test_the_datamodule_puts_the_cache_under_cache_dir(tiny_data: Path, tmp_path: Path) -> None:
    def datamodule(photo_cache: bool) -> DemandDataModule:
        dm = DemandDataModule(root=str(tiny_data), num_workers=0, image_config=CFG, cache=False,
                              cache_dir=str(tmp_path / "cache"), photo_cache=photo_cache)  # fmt: skip
        dm.setup("fit")
        return dm

    cached, plain = datamodule(True), datamodule(False)
    assert plain.train_set.pipeline.photo_cache is None
    assert cached.train_set.pipeline.photo_cache.root.parent == tmp_path / "cache" / "decoded-photos"
    rows = [i for i in range(len(plain.val_set)) if plain.val_set[i]["has_image"]][:5]
    assert rows, "the tiny data set has photos"
    for i in rows:
        assert torch.equal(plain.val_set[i]["image"], cached.val_set[i]["image"])
    assert len(_entries(tmp_path / "cache")) == len(rows)


def test_decode_image_reads_bytes_like_the_file(photos: Path) -> None:
    path = photos / "p3.jpg"
    assert np.array_equal(decode_image(io.BytesIO(path.read_bytes()), 40), decode_image(path, 40))
