"""DemandDataModule: split, preprocessing fitted on the train split only, batches, and a state that travels."""

from __future__ import annotations

import io
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from demandnet import batch as keys
from demandnet.data import schema
from demandnet.data.datamodule import DemandDataModule
from demandnet.data.hf_tokenizer import HFTokenizer
from demandnet.data.images import resolve_image_config
from demandnet.data.tabular import NUMERIC_FEATURES, TabularPreprocessor
from demandnet.data.text import NavecTokenizer, cell_words, load_navec

N_TRAIN, N_TEST = 240, 50  # the tiny_data fixture
VAL_FRACTION = 0.2
PLAIN = (dict, list, str, int, float, bool, type(None))


def _module(root: Path, **kwargs) -> DemandDataModule:
    kwargs = {"val_fraction": VAL_FRACTION, "num_workers": 0, "batch_size": 32, "eval_batch_size": 64, **kwargs}
    return DemandDataModule(root=str(root), **kwargs)


def _weights_only(state: dict) -> dict:
    """torch.save -> torch.load(weights_only=True), as a checkpoint does."""
    buffer = io.BytesIO()
    torch.save(state, buffer)
    buffer.seek(0)
    return torch.load(buffer, weights_only=True)


def _assert_plain(value, where: str = "state") -> None:
    assert isinstance(value, PLAIN), f"{where} is a {type(value).__name__}"
    if isinstance(value, dict):
        for key, item in value.items():
            assert isinstance(key, str), f"{where} has a {type(key).__name__} key"
            _assert_plain(item, f"{where}[{key!r}]")
    elif isinstance(value, list):
        for i, item in enumerate(value):
            _assert_plain(item, f"{where}[{i}]")


@pytest.fixture(scope="module")
def full(tiny_data: Path) -> DemandDataModule:
    """Navec text, photos at 32 px and the table, set up once for the module."""
    datamodule = _module(tiny_data, text_tokenizer=NavecTokenizer(), image_config=resolve_image_config("lcnet_050", 32))
    datamodule.setup("fit")
    return datamodule


@pytest.fixture(scope="module")
def frame(tiny_data: Path) -> pd.DataFrame:
    return schema.read_table(tiny_data / "train.csv", require_target=True)


# ---- split ---------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("val_fraction", [0.1, 0.25])
def test_split_is_disjoint_covers_every_row_and_has_the_asked_size(tiny_data, val_fraction):
    datamodule = _module(tiny_data, val_fraction=val_fraction)
    datamodule.setup("fit")
    train, val = datamodule.train_set.rows, datamodule.val_set.rows
    assert len(val) == round(N_TRAIN * val_fraction) and len(train) == N_TRAIN - len(val)
    assert len(np.intersect1d(train, val)) == 0
    assert np.array_equal(np.sort(np.concatenate([train, val])), np.arange(N_TRAIN))
    assert len(datamodule.test_set) == N_TEST
    assert np.array_equal(datamodule.test_item_ids, pd.read_csv(tiny_data / "test.csv", dtype=str)["item_id"])
    assert datamodule.predict_set is datamodule.test_set


def test_setup_runs_once_and_the_same_seed_gives_the_same_split(tiny_data, full):
    again = _module(tiny_data)
    again.setup("fit")
    assert np.array_equal(again.val_set.rows, full.val_set.rows)
    train_set = again.train_set
    again.setup("validate")  # the Trainer calls setup again: nothing is refitted
    assert again.train_set is train_set
    other = _module(tiny_data, seed=7)
    other.setup("fit")
    assert not np.array_equal(other.val_set.rows, full.val_set.rows)


def test_time_split_validates_on_the_latest_dates(tiny_data, frame):
    datamodule = _module(tiny_data, split="time")
    datamodule.setup("fit")
    dates = pd.to_datetime(frame[schema.DATE])
    val_dates, train_dates = dates.iloc[datamodule.val_set.rows], dates.iloc[datamodule.train_set.rows]
    assert len(datamodule.val_set) == round(N_TRAIN * VAL_FRACTION)
    assert val_dates.min() >= train_dates.max()
    assert val_dates.max() == dates.max()


# ---- preprocessing fitted on the train split only ------------------------------------------------------------------
def test_a_category_seen_only_in_validation_goes_to_the_unknown_bucket(full, frame):
    train, val = full.train_set.rows, full.val_set.rows
    codes = full.val_set.arrays[keys.CATEGORICAL]
    checked = 0
    for j, column in enumerate(full.tabular.columns):
        if column not in schema.CATEGORICAL or column == "user_id":  # user_id also needs min_count 5 to be kept
            continue
        values = frame[column].astype("string").str.strip()
        val_only = set(values.iloc[val].dropna()) - set(values.iloc[train].dropna())
        for row in val:
            if values.iloc[row] in val_only:
                assert codes[row, j] == 0, (column, values.iloc[row])
                checked += 1
        seen = [row for row in train if not pd.isna(values.iloc[row])]
        assert (codes[seen, j] > 0).all(), column  # every train value keeps its own index (min_count 1)
    assert checked > 0, "the fixture has no validation-only category value: the test checks nothing"


def test_numeric_standardisation_uses_train_rows_only(full, frame):
    train_frame = frame.iloc[full.train_set.rows]
    state = full.tabular.state_dict()
    expected = TabularPreprocessor().fit(train_frame).state_dict()
    assert state["mean"] == expected["mean"] and state["std"] == expected["std"]
    assert state["mean"] != TabularPreprocessor().fit(frame).state_dict()["mean"]
    log_price = np.log1p(train_frame["price"].to_numpy(dtype=float))
    assert state["mean"][NUMERIC_FEATURES.index("log_price")] == pytest.approx(np.nanmean(log_price))
    assert state["std"][NUMERIC_FEATURES.index("log_price")] == pytest.approx(np.nanstd(log_price))
    numeric = full.train_set.arrays[keys.NUMERIC][full.train_set.rows]
    assert np.allclose(numeric.mean(axis=0), 0, atol=1e-5)  # missing values are filled with the train mean


def test_navec_vocabulary_holds_only_train_words(full, frame):
    tokenizer = full.text_tokenizer

    def words(rows: np.ndarray) -> set[str]:
        found = set()
        for field in tokenizer.fields:
            for value in frame[field].iloc[rows]:
                found.update(cell_words(value))
        return found

    vocabulary = set(tokenizer.words)
    train_words, val_words = words(full.train_set.rows), words(full.val_set.rows)
    val_only = val_words - train_words
    assert vocabulary and vocabulary <= train_words
    assert not vocabulary & val_only
    assert val_only & set(load_navec().vocab.word_ids), "no validation-only navec word: the test checks nothing"


def test_baselines_are_finite_and_the_noise_floor_beats_the_train_mean(full):
    baselines = full.baselines
    assert set(baselines) >= {"train_mean_rmse", "noise_floor_rmse"}
    assert np.isfinite(baselines["train_mean_rmse"]) and baselines["train_mean_rmse"] > 0
    assert np.isfinite(baselines["noise_floor_rmse"]) and baselines["noise_floor_rmse"] > 0
    assert baselines["noise_floor_rmse"] < baselines["train_mean_rmse"]  # holds for this fixture and seed


def test_a_missing_required_column_is_named(tiny_data, tmp_path):
    for column in ("title", schema.TARGET):
        root = tmp_path / column
        root.mkdir()
        pd.read_csv(tiny_data / "train.csv", dtype=str).drop(columns=column).to_csv(root / "train.csv", index=False)
        datamodule = _module(root)
        with pytest.raises(schema.DataError, match=rf"required column\(s\) missing: {column}"):
            datamodule.setup("fit")


# ---- rows, batches and loaders -------------------------------------------------------------------------------------
def test_rows_and_batches_have_the_documented_keys_dtypes_and_shapes(full, frame):
    dims = full.tabular.model_dims()
    lengths = full.text_tokenizer.max_len
    rows = [0, 3, 5]
    batch = full.val_set.__getitems__(rows)
    expected = {
        keys.CATEGORICAL: (torch.int64, (3, len(dims["cardinalities"]))),
        keys.NUMERIC: (torch.float32, (3, dims["num_numeric"])),
        keys.field_ids("title"): (torch.int64, (3, lengths["title"])),
        keys.field_ids("description"): (torch.int64, (3, lengths["description"])),
        keys.TARGET: (torch.float32, (3,)),
        keys.INDEX: (torch.int64, (3,)),
        keys.IMAGE: (torch.float32, (3, 3, 32, 32)),
        keys.HAS_IMAGE: (torch.float32, (3,)),
        keys.PHOTO_ON_DISK: (torch.bool, (3,)),
    }
    assert set(batch) == set(expected)
    for key, (dtype, shape) in expected.items():
        assert batch[key].dtype == dtype and tuple(batch[key].shape) == shape, key
    source = full.val_set.rows[rows]
    assert np.array_equal(batch[keys.INDEX].numpy(), source)
    target = frame[schema.TARGET].to_numpy(dtype=np.float32)[source]
    assert np.array_equal(batch[keys.TARGET].numpy(), target)

    one = full.val_set[3]  # the second row of the batch above
    assert set(one) == set(expected)
    for key, (dtype, shape) in expected.items():
        assert one[key].dtype == dtype and tuple(one[key].shape) == shape[1:], key
        assert torch.equal(one[key], batch[key][1]), key


def test_rows_without_a_photo_have_has_image_zero(full, frame):
    no_photo = np.flatnonzero(frame[schema.IMAGE].isna().to_numpy())
    with_photo = np.flatnonzero(frame[schema.IMAGE].notna().to_numpy())[:8]
    assert len(no_photo) > 0
    positions = {row: i for i, row in enumerate(full.train_set.rows)}
    positions_val = {row: i for i, row in enumerate(full.val_set.rows)}
    for rows, expected in ((no_photo, 0.0), (with_photo, 1.0)):
        for row in rows:
            dataset, index = (
                (full.train_set, positions[row]) if row in positions else (full.val_set, positions_val[row])
            )
            item = dataset[index]
            assert item[keys.HAS_IMAGE].item() == expected, (row, frame[schema.IMAGE].iloc[row])
            if expected == 0.0:
                assert not item[keys.IMAGE].any()


def test_loaders_serve_plain_tensor_batches_covering_each_split(full):
    seen = []
    for batch in full.train_dataloader():
        assert type(batch) is dict and all(type(v) is torch.Tensor for v in batch.values())
        assert len(batch[keys.INDEX]) <= full.batch_size
        assert all(len(v) == len(batch[keys.INDEX]) for v in batch.values())
        seen.append(batch[keys.INDEX])
    assert np.array_equal(np.sort(torch.cat(seen).numpy()), full.train_set.rows)
    val = torch.cat([b[keys.INDEX] for b in full.val_dataloader()]).numpy()
    assert np.array_equal(val, full.val_set.rows)  # evaluation in file order, every row once
    test = list(full.predict_dataloader())
    assert keys.TARGET not in test[0]
    assert np.array_equal(torch.cat([b[keys.INDEX] for b in test]).numpy(), np.arange(N_TEST))


def test_loader_before_setup_is_a_clear_error(tiny_data):
    with pytest.raises(RuntimeError, match="setup"):
        _module(tiny_data).train_dataloader()


# ---- the state that a checkpoint carries ---------------------------------------------------------------------------
def _assert_same_encoding(a, b) -> None:
    assert set(a.arrays) == set(b.arrays)
    for key in a.arrays:
        assert a.arrays[key].dtype == b.arrays[key].dtype and np.array_equal(a.arrays[key], b.arrays[key]), key
    assert np.array_equal(a.item_ids, b.item_ids) and np.array_equal(a.rows, b.rows)
    batch_a, batch_b = a.__getitems__(range(len(a))), b.__getitems__(range(len(b)))
    assert set(batch_a) == set(batch_b)
    for key in batch_a:
        assert torch.equal(batch_a[key], batch_b[key]), key


def _restored_encodes_identically(fitted, state: dict, tiny_data, tokenizer_class: type) -> DemandDataModule:
    """A fresh DataModule loaded from `state` has `fitted`'s tokenizer and sizes and encodes test.csv alike."""
    fresh = DemandDataModule(root=".", num_workers=0)
    fresh.load_state_dict(state)
    assert isinstance(fresh.text_tokenizer, tokenizer_class)
    assert fresh.model_dims() == fitted.model_dims()
    test_csv = tiny_data / "test.csv"
    _assert_same_encoding(fitted.encode_for_prediction(test_csv), fresh.encode_for_prediction(test_csv))
    return fresh


def test_state_is_plain_and_a_fresh_module_encodes_identically(full, tiny_data):
    state = _weights_only(full.state_dict())
    _assert_plain(state)
    fresh = _restored_encodes_identically(full, state, tiny_data, NavecTokenizer)
    # the labelled file too: same codes, same photos; no target is served for prediction
    again = fresh.encode_for_prediction(tiny_data / "train.csv")
    assert keys.TARGET not in again.arrays
    assert np.array_equal(again.arrays[keys.CATEGORICAL], full.train_set.arrays[keys.CATEGORICAL])


def test_hf_tokenizer_state_round_trips_without_the_model_folder(tiny_bert, tiny_data, tmp_path):
    folder = tmp_path / "bert"
    shutil.copytree(tiny_bert, folder)  # the session fixture stays; this copy is deleted below
    datamodule = _module(tiny_data, text_tokenizer=HFTokenizer(str(folder), max_length=24))
    datamodule.setup("fit")
    batch = datamodule.train_set.__getitems__([0, 1])
    assert batch[keys.TEXT_IDS].dtype == torch.int64 and tuple(batch[keys.TEXT_IDS].shape) == (2, 24)
    assert batch[keys.TEXT_MASK].dtype == torch.int64 and tuple(batch[keys.TEXT_MASK].shape) == (2, 24)
    assert keys.IMAGE not in batch and keys.HAS_IMAGE not in batch  # no image_config: no photos read
    state = _weights_only(datamodule.state_dict())
    _assert_plain(state)
    shutil.rmtree(folder)
    _restored_encodes_identically(datamodule, state, tiny_data, HFTokenizer)


def test_an_image_folder_that_does_not_exist_is_a_clear_error(tiny_data):
    config = resolve_image_config("test_resnet", 32)
    datamodule = DemandDataModule(root=str(tiny_data), num_workers=0, image_config=config, image_dir="/no/such/dir")
    with pytest.raises(schema.DataError, match="image folder not found: /no/such/dir"):
        datamodule.setup("fit")
