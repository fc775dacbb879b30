"""The encoded-data cache: a second setup on the same files and settings reads the arrays back; any change of a
file or a setting encodes again; a broken entry is ignored."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from demandnet.data.datamodule import DemandDataModule
from demandnet.data.text import NavecTokenizer

HIT = "encoded arrays read from the cache"


def _setup(root: Path, cache: Path, caplog: pytest.LogCaptureFixture, **kwargs) -> tuple[DemandDataModule, bool]:
    caplog.clear()
    tokenizer = NavecTokenizer(max_len=kwargs.pop("max_len", None))
    datamodule = DemandDataModule(root=str(root), num_workers=0, cache_dir=str(cache), text_tokenizer=tokenizer,
                                  **kwargs)  # fmt: skip
    with caplog.at_level(logging.INFO):
        datamodule.setup("fit")
    return datamodule, HIT in caplog.text


def _same(a: DemandDataModule, b: DemandDataModule) -> None:
    assert a.state_dict() == b.state_dict() and a.baselines == b.baselines
    for x, y in ((a.train_set, b.train_set), (a.val_set, b.val_set), (a.test_set, b.test_set)):
        np.testing.assert_array_equal(x.rows, y.rows)
        np.testing.assert_array_equal(x.item_ids, y.item_ids)
        assert x.arrays.keys() == y.arrays.keys()
        for key in x.arrays:
            np.testing.assert_array_equal(x.arrays[key], y.arrays[key])


def test_a_second_setup_reads_what_the_first_encoded(tiny_data: Path, tmp_path: Path, caplog) -> None:
    first, hit = _setup(tiny_data, tmp_path, caplog)
    assert not hit
    second, hit = _setup(tiny_data, tmp_path, caplog)
    assert hit
    _same(first, second)
    assert second.text_tokenizer.pretrained_embeddings().shape[0] == second.model_dims()["text"]["vocab_size"]


def test_a_changed_file_or_setting_encodes_again(tiny_data: Path, tmp_path: Path, caplog) -> None:
    data = tmp_path / "data"
    shutil.copytree(tiny_data, data)
    _setup(data, tmp_path / "cache", caplog)
    assert _setup(data, tmp_path / "cache", caplog)[1]
    for change in ({"seed": 7}, {"val_fraction": 0.3}, {"max_len": {"title": 5, "description": 9}},
                   {"tabular": {"min_count": 2}}):  # fmt: skip
        assert not _setup(data, tmp_path / "cache", caplog, **change)[1], change
    frame = pd.read_csv(data / "train.csv")
    frame.loc[0, "price"] = 123456.0
    frame.to_csv(data / "train.csv", index=False)
    changed, hit = _setup(data, tmp_path / "cache", caplog)
    assert not hit
    fresh = DemandDataModule(root=str(data), num_workers=0, cache=False, text_tokenizer=NavecTokenizer())
    fresh.setup("fit")
    _same(changed, fresh)


def test_a_broken_entry_is_ignored(tiny_data: Path, tmp_path: Path, caplog) -> None:
    first, _ = _setup(tiny_data, tmp_path, caplog)
    for npz in (tmp_path / "encoded").rglob("arrays.npz"):
        npz.write_bytes(b"not a zip")
    again, hit = _setup(tiny_data, tmp_path, caplog)
    assert not hit and "unreadable encoded-data cache entry" in caplog.text
    _same(first, again)
    assert _setup(tiny_data, tmp_path, caplog)[1]  # the broken entry was replaced


def test_a_cache_hit_repeats_the_data_warnings(tiny_data: Path, tmp_path: Path, caplog) -> None:
    data = tmp_path / "data"
    shutil.copytree(tiny_data, data)
    frame = pd.read_csv(data / "train.csv")
    frame.loc[:5, "price"] = -1.0
    frame.drop(columns=["param_3"]).to_csv(data / "train.csv", index=False)
    _setup(data, tmp_path / "cache", caplog)
    first = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert any("param_3" in m for m in first) and any("negative" in m for m in first)
    _, hit = _setup(data, tmp_path / "cache", caplog)
    again = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert hit and [m.removesuffix(" (said when these files were encoded)") for m in again] == first


def test_a_cache_that_cannot_be_written_is_a_warning(tiny_data: Path, tmp_path: Path, caplog) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    datamodule, hit = _setup(tiny_data, blocker / "cache", caplog)  # a path below a file: never a directory
    assert not hit and "cannot write the encoded-data cache" in caplog.text
    assert len(datamodule.train_set) > 0
