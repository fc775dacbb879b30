"""frozen_cache_epoch_speedup: with model.image.freeze=true, the epoch time without the feature cache (decode +
frozen CNN forward every epoch) over the epoch time with a warm cache (features read from arrays), same
backbone; and the largest difference of the two models' validation predictions.

    python -m benchmarks.frozen_cache [--quick]
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import time

import numpy as np
import pytorch_lightning as pl

from benchmarks.common import WORK, config
from demandnet.frozen_features import FrozenImageFeatures
from demandnet.train import build

BACKBONE = ["model.image.name=resnet18", "model.image.img_size=128"]


class _EpochClock(pl.Callback):
    def __init__(self) -> None:
        self.seconds: list[float] = []

    def on_train_epoch_start(self, trainer, pl_module) -> None:
        self._start = time.perf_counter()

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        self.seconds.append(time.perf_counter() - self._start)


def _cfg(n_train: int):
    return config(f"data.synthetic.n_train={n_train}", "data.synthetic.n_test=100", "model.image.freeze=true",
                  *BACKBONE)  # fmt: skip


def _trainer(callbacks: list, epochs: int = 1) -> pl.Trainer:
    return pl.Trainer(accelerator="auto", devices=1, max_epochs=epochs, limit_val_batches=0, logger=False,
                      enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
                      use_distributed_sampler=False, callbacks=callbacks)  # fmt: skip


def _fit(cache: FrozenImageFeatures, n_train: int, epochs: int) -> tuple[list[float], float, pl.LightningModule]:
    """Epoch seconds, the seconds before the first epoch (the cache callback's setup), the trained model."""
    pl.seed_everything(0)
    datamodule, model = build(_cfg(n_train))
    clock = _EpochClock()
    started = time.perf_counter()
    _trainer([cache, clock], epochs).fit(model, datamodule=datamodule)
    return clock.seconds, time.perf_counter() - started - sum(clock.seconds), model


def _predict_val(model: pl.LightningModule, cache: FrozenImageFeatures, n_train: int) -> np.ndarray:
    datamodule, _ = build(_cfg(n_train))  # fresh data sets: the photos, not features a callback put in place
    datamodule.predict_set = datamodule.val_set
    out = _trainer([cache]).predict(model, datamodule=datamodule)
    return np.concatenate([o["prediction"].numpy() for o in out])


def measure(quick: bool = False) -> dict:
    n_train, epochs = (2000, 2) if quick else (8000, 3)
    cache_dir = WORK / "feature-cache"
    shutil.rmtree(cache_dir, ignore_errors=True)
    plain, _, _ = _fit(FrozenImageFeatures(enabled=False), n_train, epochs)
    _, cold_setup, _ = _fit(FrozenImageFeatures(str(cache_dir)), n_train, 1)  # fills the cache
    warm, warm_setup, model = _fit(FrozenImageFeatures(str(cache_dir)), n_train, epochs)
    # the same trained weights, predicted once from the cache and once through decode + backbone
    cached = _predict_val(model, FrozenImageFeatures(str(cache_dir)), n_train)
    uncached = _predict_val(model, FrozenImageFeatures(enabled=False), n_train)
    return {
        "frozen_cache_epoch_speedup": statistics.median(plain) / statistics.median(warm),
        "frozen_epoch_seconds_uncached": statistics.median(plain),
        "frozen_epoch_seconds_warm_cache": statistics.median(warm),
        "frozen_cache_fill_seconds": cold_setup,
        "frozen_cache_warm_load_seconds": warm_setup,
        "frozen_cache_max_abs_prediction_diff": float(np.abs(cached - uncached).max()),
        "frozen_cache_setup": {"n_train": n_train, "epochs": epochs, "backbone": BACKBONE},
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true")
    print(json.dumps(measure(parser.parse_args().quick), indent=2))
