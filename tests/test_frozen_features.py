"""The frozen-feature cache: computed once, reused by later runs and predict, equal to the uncached model,
invalidated by any change of backbone, weights, transform or photo, and safe under DDP."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import timm

from demandnet.data.feature_store import FeatureStore, model_key
from tests.conftest import run_cli, train
from tests.photos import photo, save

FROZEN = ["model.image.freeze=true", "trainer.max_epochs=2"]


def test_an_entry_is_written_once_and_read_back(tmp_path: Path) -> None:
    store = FeatureStore(tmp_path, "k")
    assert store.get("ab" * 16) is None
    store.put("ab" * 16, np.arange(4, dtype=np.float32))
    store.put("ab" * 16, np.zeros(4, dtype=np.float32))  # a second writer never replaces the first entry
    np.testing.assert_array_equal(store.get("ab" * 16), np.arange(4))
    assert [p.name for p in (tmp_path / "image-features" / "k" / "ab").iterdir()] == ["ab" * 16 + ".npy"]


def test_store_entries_of_another_shape_or_dtype_read_as_absent(tmp_path: Path) -> None:
    store = FeatureStore(tmp_path, "k", shape=(4,))
    for wrong in (np.zeros(5, np.float32), np.zeros(4, np.float64), np.zeros((4, 1), np.float32)):
        FeatureStore(tmp_path, "k", dtype=wrong.dtype).put("cd" * 16, wrong)  # a writer that was not this one
        assert store.get("cd" * 16) is None  # and the entry is gone, so the right features can be written
        assert not list((tmp_path / "image-features" / "k").rglob("*.npy"))
    store.put("cd" * 16, np.ones(4, np.float32))
    np.testing.assert_array_equal(store.get("cd" * 16), np.ones(4))


def test_the_key_changes_with_backbone_weights_and_transform() -> None:
    config = {"input_size": [3, 32, 32], "mean": [0.5] * 3, "std": [0.5] * 3}
    a = timm.create_model("lcnet_050", pretrained=False, num_classes=0)
    key = model_key("lcnet_050", a, config)
    assert model_key("lcnet_050", a, dict(config)) == key
    assert model_key("lcnet_075", a, config) != key
    assert model_key("lcnet_050", a, {**config, "input_size": [3, 64, 64]}) != key
    next(a.parameters()).data.add_(1e-3)
    assert model_key("lcnet_050", a, config) != key


def _computed(output: str) -> int:
    line = next(line for line in output.splitlines() if "frozen image features:" in line)
    return int(line.split("(")[1].split()[0])


def _predict(ckpt: Path, data: Path, out: Path, *extra: str) -> tuple[pd.DataFrame, int | None]:
    done = run_cli(["-m", "demandnet.predict", f"ckpt_path={ckpt}", f"input_csv={data / 'test.csv'}",
                    f"output_csv={out}", "num_workers=0", *extra])  # fmt: skip
    text = done.stdout + done.stderr
    return pd.read_csv(out), (_computed(text) if "frozen image features:" in text else None)


@pytest.mark.slow
def test_features_are_cached_once_reused_and_equal_to_the_uncached_model(
    tiny_data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = tmp_path / "data"
    shutil.copytree(tiny_data, data)
    monkeypatch.setenv("DEMANDNET_CACHE_DIR", str(tmp_path / "cache"))  # run_cli passes the environment on
    first = train(tmp_path / "run", *FROZEN, data=data)
    photos = len(list((tmp_path / "cache").rglob("*.npy")))
    assert photos > 100 and _computed(first.stdout + first.stderr) == photos
    ckpt = tmp_path / "run" / "checkpoints" / "best.ckpt"
    cached, computed = _predict(ckpt, data, tmp_path / "cached.csv")
    assert computed == 0  # a later run: every test photo was featurised by the training run
    plain, computed = _predict(ckpt, data, tmp_path / "plain.csv", "feature_cache=false")
    assert computed is None
    assert cached.item_id.tolist() == plain.item_id.tolist()
    assert np.abs(cached.deal_probability - plain.deal_probability).max() < 1e-5
    # a changed photo is a new entry; the others are still served from the cache
    frame = pd.read_csv(data / "test.csv")
    name = frame.image.dropna().iloc[0]
    save(data / "images", name, photo(seed=99))
    _, computed = _predict(ckpt, data, tmp_path / "again.csv")
    assert computed == 1


@pytest.mark.slow
def test_ddp_ranks_share_the_cache_and_train_on_it(
    tiny_data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DEMANDNET_CACHE_DIR", str(tmp_path / "cache"))
    run = train(tmp_path / "ddp", *FROZEN, "trainer=ddp", "trainer.devices=2", data=tiny_data)
    entries = list((tmp_path / "cache").rglob("*"))
    assert not [p for p in entries if p.name.startswith(".tmp-")]  # no partial file left behind
    assert "val_rmse" in (run.stdout + run.stderr)
    # a cache directory per node (here per process): each computes what it cannot read, no photo is lost
    local = f"callbacks.frozen_features.cache_dir={tmp_path}/node-${{oc.env:LOCAL_RANK,0}}"
    apart = train(tmp_path / "apart", *FROZEN, "trainer=ddp", "trainer.devices=2", local, data=tiny_data)
    assert "are not in" in apart.stdout + apart.stderr
    unusable = json.loads((tmp_path / "apart" / "metrics.json").read_text())["unusable_photos"]
    assert unusable == {"train": 0, "validation": 0, "predict": 0}
    solo, computed = _predict(tmp_path / "ddp" / "checkpoints" / "best.ckpt", tiny_data, tmp_path / "p.csv")
    assert computed == 0  # the two ranks together featurised every photo once
    assert len(solo) == len(pd.read_csv(tiny_data / "test.csv"))
