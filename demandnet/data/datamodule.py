"""DemandDataModule: read, validate, split, fit preprocessing on the train split only, and serve loaders.

The fitted state (tabular maps, text vocabulary or tokenizer, image config) is returned by `state_dict()`, which
Lightning stores in every checkpoint, so prediction needs nothing but the checkpoint.
"""

from __future__ import annotations

import logging
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytorch_lightning as pl
from hydra.utils import get_class
from torch.utils.data import DataLoader

from demandnet import batch as keys
from demandnet import distributed
from demandnet.data import schema
from demandnet.data.baselines import EXPECTED_FILE, reference_rmse
from demandnet.data.dataset import DemandDataset
from demandnet.data.encoded_cache import EncodedCache, WarningsKept, cache_key, pack, unpack
from demandnet.data.feature_store import default_cache_dir
from demandnet.data.folds import fold_rows
from demandnet.data.images import ImagePipeline
from demandnet.data.loaders import data_loader, resolve_workers
from demandnet.data.photo_folders import photo_folders
from demandnet.data.sampler import EpochSampler
from demandnet.data.split import split_rows
from demandnet.data.synthetic import ensure_synthetic
from demandnet.data.tabular import TabularPreprocessor

log = logging.getLogger(__name__)


class DemandDataModule(pl.LightningDataModule):
    def __init__(
        self,
        root: str,
        train_csv: str = "train.csv",
        test_csv: str | None = "test.csv",
        image_dir: str | None = None,
        val_fraction: float = 0.1,
        split: str = "random",
        seed: int = 42,
        batch_size: int = 128,
        eval_batch_size: int = 256,
        num_workers: int | str = "auto",
        tabular: dict | None = None,
        text_tokenizer: object | None = None,
        image_config: dict | None = None,
        strict_images: bool = False,
        synthetic: dict | None = None,
        bad_photo_log: str | None = None,
        cache: bool = True,
        cache_dir: str | None = None,
        photo_cache: bool = False,
        fold: int | None = None,
        folds: int | None = None,
        gap_days: int = 0,
    ) -> None:
        super().__init__()
        self.root = Path(root)
        self.train_csv, self.test_csv, self.image_dir = train_csv, test_csv, image_dir
        self.val_fraction, self.split, self.seed = val_fraction, split, seed
        self.batch_size, self.eval_batch_size = batch_size, eval_batch_size
        self.num_workers = resolve_workers(num_workers)
        self.tabular = TabularPreprocessor(**(tabular or {}))
        self.text_tokenizer = text_tokenizer
        self.image_config = image_config
        self.strict_images = strict_images
        self.synthetic = synthetic
        self.bad_photo_log = bad_photo_log  # a file listing every unusable photo (item_id, file, reason)
        # encoded arrays on disk, keyed by the files' bytes and the preprocessing settings (encoded_cache.py)
        self.cache, self.cache_dir = cache, cache_dir
        # decoded photo pixels on disk under cache_dir, by content: epochs after the first skip JPEG decoding
        self.photo_cache = photo_cache
        # k-fold (demandnet.cv): validate on fold `fold` of `folds` (by `split`), fit on the others; val_fraction unused
        self.fold, self.folds, self.gap_days = fold, folds, gap_days
        self.train_set: DemandDataset | None = None
        self.val_set: DemandDataset | None = None
        self.test_set: DemandDataset | None = None
        self.predict_set: DemandDataset | None = None  # what predict_dataloader serves; the test set by default
        self.test_item_ids: np.ndarray | None = None
        self.baselines: dict[str, float | None] = {}
        self.train_target_mean: float | None = None  # the model's starting prediction

    # ---- data preparation -------------------------------------------------------------------------------------
    def prepare_data(self) -> None:
        if self.synthetic:
            ensure_synthetic(self.root, **self.synthetic)

    def setup(self, stage: str | None = None) -> None:
        if self.train_set is not None or (stage == "predict" and self.predict_set is not None):
            return  # already set up before the Trainer was built (the model needs the data-derived sizes)
        train_path = self.root / self.train_csv
        test_path = self.root / self.test_csv if self.test_csv else None
        test_path = test_path if test_path is not None and test_path.is_file() else None
        train, test, split = self._encoded_files(train_path, test_path)
        train_rows, val_rows = split["train_rows"], split["val_rows"]
        arrays = {k: v for k, v in train.items() if k not in _META}
        images, pipeline_dirs = self._image_names(train["image_name"], train_path, arrays=arrays)
        item_ids = train["item_id"]
        self.train_set = DemandDataset(arrays, train_rows, item_ids, images, self._pipeline(pipeline_dirs, True))
        self.val_set = DemandDataset(arrays, val_rows, item_ids, images, self._pipeline(pipeline_dirs, False))
        photos = self.train_set.pipeline.photo_cache if self.train_set.pipeline is not None else None
        if photos is not None:
            log.info("decoded photos cached under %s (data.photo_cache)", photos.root.parent)
        self.baselines = split["baselines"]
        self.train_target_mean = float(arrays[keys.TARGET][train_rows].mean())
        how = f"{self.split} fold {self.fold} of {self.folds}" if self.folds else f"{self.split} split"
        log.info("train %s: %d train rows, %d validation rows (%s)", train_path, len(train_rows), len(val_rows), how)
        if test is not None:
            self.test_set = self.predict_set = self._dataset(test, test_path)
            self.test_item_ids = self.test_set.item_ids

    def _encoded_files(self, train_path: Path, test_path: Path | None) -> tuple[dict, dict | None, dict]:
        """Fit on the train split and encode both files, or read all of it from the encoded-data cache."""
        cache, key = EncodedCache(self.cache_dir), None
        if self.cache:
            key = cache_key({"train": train_path, "test": test_path, "expected": self._expected},
                            {"tabular": self.tabular, "text": self.text_tokenizer,
                             "split": [self.val_fraction, self.split, self.seed, self.fold, self.folds, self.gap_days]})  # fmt: skip
            hit = cache.load(key)
            if hit is not None:
                log.info("encoded arrays read from the cache (%s): preprocessing not fitted again", cache.root / key)
                stored, state = hit
                for message in state.get("warnings", []):  # what the data said when it was encoded
                    log.warning("%s (said when these files were encoded)", message)
                self._restore_fit(state["fitted"])
                parts = unpack(stored, ("train", "test", "split"))
                return parts["train"], parts["test"], {**parts["split"], "baselines": state["baselines"]}
        with WarningsKept() as said:
            frame = schema.read_table(train_path, require_target=True)
            if self.folds:
                train_rows, val_rows = fold_rows(frame, self.fold, self.folds, self.split, self.seed, self.gap_days)
            else:
                train_rows, val_rows = split_rows(frame, self.val_fraction, self.split, self.seed)
            fit_frame = frame.iloc[train_rows]
            self.tabular.fit(fit_frame)
            text = None
            if hasattr(self.text_tokenizer, "fit_transform"):  # tokenises each distinct text once for both
                text = self.text_tokenizer.fit_transform(frame, train_rows)
            elif self.text_tokenizer is not None:
                self.text_tokenizer.fit(fit_frame)
            train = {
                **self._encode(frame, text),
                **_meta(frame),
                keys.TARGET: frame[schema.TARGET].to_numpy(np.float32),
            }
            split = {"train_rows": train_rows, "val_rows": val_rows}
            baselines = reference_rmse(frame, train_rows, val_rows, self._expected)
            test = None
            if test_path is not None:
                test_frame = schema.read_table(test_path)
                test = {**self._encode(test_frame), **_meta(test_frame)}
        if key is not None:
            state = {"fitted": self.state_dict(), "baselines": baselines, "warnings": said.messages}
            cache.save(key, pack({"train": train, "test": test, "split": split}), state)
        return train, test, {**split, "baselines": baselines}

    @property
    def _expected(self) -> Path:
        return self.root / EXPECTED_FILE

    def _dataset(self, encoded: dict, path: Path, image_dir: str | None = None) -> DemandDataset:
        arrays = {k: v for k, v in encoded.items() if k not in _META}
        images, dirs = self._image_names(encoded["image_name"], path, image_dir, arrays)
        rows = np.arange(len(encoded["item_id"]))
        return DemandDataset(arrays, rows, encoded["item_id"], images, self._pipeline(dirs, False))

    def encode_for_prediction(self, path: str | Path, image_dir: str | None = None) -> DemandDataset:
        """Encode any CSV in the Avito schema with the fitted state (unknown categories and words -> unknown)."""
        path = Path(path)
        frame = schema.read_table(path)
        return self._dataset({**self._encode(frame), **_meta(frame)}, path, image_dir)

    def _encode(self, frame: pd.DataFrame, text: dict[str, np.ndarray] | None = None) -> dict[str, np.ndarray]:
        arrays = self.tabular.transform(frame)
        arrays = {keys.CATEGORICAL: arrays["categorical"], keys.NUMERIC: arrays["numeric"]}
        if text is not None:
            arrays.update(text)
        elif self.text_tokenizer is not None:
            arrays.update(self.text_tokenizer.transform(frame))
        return arrays

    def _image_names(
        self, names: np.ndarray, path: Path, image_dir: str | None = None, arrays: dict | None = None
    ) -> tuple[np.ndarray | None, list]:
        """The image field of every row and the folders to read them from; puts the per-row `photo_on_disk` flag
        into `arrays` (so a photo that is there but unusable can be counted)."""
        if self.image_config is None:
            return None, []
        dirs, on_disk = photo_folders(names, path, image_dir or self.image_dir)
        if arrays is not None:
            arrays[keys.PHOTO_ON_DISK] = on_disk
        return names, dirs

    def _pipeline(self, dirs: list, train: bool) -> ImagePipeline | None:
        if self.image_config is None:
            return None
        photos = default_cache_dir(self.cache_dir) if self.photo_cache else None
        return ImagePipeline(dirs, self.image_config, train=train, strict=self.strict_images, seed=self.seed,
                             bad_photo_log=self.bad_photo_log, photo_cache_dir=photos)  # fmt: skip

    # ---- what the model needs from the data ------------------------------------------------------------------
    def model_dims(self) -> dict:
        dims = {"tabular": self.tabular.model_dims()}
        if self.text_tokenizer is not None:
            dims["text"] = self.text_tokenizer.model_dims()
        return dims

    def state_dict(self) -> dict:
        text = None
        if self.text_tokenizer is not None:
            cls = type(self.text_tokenizer)
            text = {"class": f"{cls.__module__}.{cls.__qualname__}", "state": self.text_tokenizer.state_dict()}
        split = {"seed": self.seed, "split": self.split, "val_fraction": self.val_fraction,
                 "train_rows": len(self.train_set) if self.train_set is not None else None,
                 "fold": self.fold, "folds": self.folds, "gap_days": self.gap_days}  # fmt: skip
        return {"tabular": self.tabular.state_dict(), "text": text, "image_config": self.image_config,
                "strict_images": self.strict_images, "fitted_on": split}  # fmt: skip

    def load_state_dict(self, state: dict) -> None:
        """Restore the fitted state (prediction). When training resumes, the state was just fitted again on this
        run's train split; it must equal the checkpoint's, or the arrays and the model would disagree."""
        if self.train_set is not None:
            self.check_same_fit(state)
            return
        self._restore_fit(state)
        self.image_config = state["image_config"]
        self.strict_images = state.get("strict_images", False)

    def _restore_fit(self, state: dict) -> None:
        """The fitted tabular and text state, loaded into this DataModule's own preprocessors where it has them."""
        self.tabular.load_state_dict(state["tabular"])
        if state["text"] is None:
            self.text_tokenizer = None
            return
        cls = get_class(state["text"]["class"])
        if not isinstance(self.text_tokenizer, cls):
            self.text_tokenizer = cls.__new__(cls)
        self.text_tokenizer.load_state_dict(state["text"]["state"])

    def check_same_fit(self, state: dict) -> None:
        """Raise unless `state` (a checkpoint's) holds the preprocessing this DataModule fitted."""
        now = self.state_dict()
        differ = [part for part in ("tabular", "text", "image_config") if now[part] != state.get(part)]
        then = state.get("fitted_on") or {}
        if any(now["fitted_on"][k] != then.get(k) for k in ("fold", "folds")):  # never another fold's model
            differ.append("cross-validation fold")
        if differ:
            raise schema.DataError(
                f"the checkpoint's preprocessing ({', '.join(differ)}) was fitted on another train split or other "
                f"data (then: {state.get('fitted_on')}, now: {now['fitted_on']}): resume with the data, seed and "
                "split settings of that run, or start a new run"
            )

    # ---- loaders ---------------------------------------------------------------------------------------------
    def train_dataloader(self) -> DataLoader:
        return self._loader(self.train_set, self.batch_size, train=True)

    def val_dataloader(self) -> DataLoader:
        return self._loader(self.val_set, self.eval_batch_size, train=False)

    def predict_dataloader(self) -> DataLoader:
        # Built by the Trainer after DDP has started, so each process gets its own share of the rows.
        if self.predict_set is None:
            raise RuntimeError(f"no test file ({self.root / str(self.test_csv)}) to predict")
        return self._loader(self.predict_set, self.eval_batch_size, train=False)

    def _loader(self, dataset: DemandDataset | None, batch_size: int, train: bool) -> DataLoader:
        if dataset is None:
            raise RuntimeError("DemandDataModule.setup() has not run")
        world, rank = distributed.world()
        if train:
            sampler = EpochSampler(len(dataset), self.seed, batch_size, rank, world, progress=self._progress)
        elif world > 1:
            # Evaluation must see every row exactly once (no padding), or DDP metrics count rows twice.
            sampler, stand_in = distributed.eval_share(len(dataset))
            if stand_in and dataset is not self.predict_set:
                raise schema.DataError(f"{len(dataset)} validation rows cannot be shared by {world} processes")
        else:
            sampler = None
        return data_loader(dataset, batch_size, sampler, self.num_workers, self.seed, resumable=train)

    def train_batches_per_epoch(self, trainer: pl.Trainer) -> int:
        """Training batches per epoch and process under `trainer` (its world size and limit_train_batches),
        counted without building a loader: the sampler pads the ranks to equal length."""
        if self.train_set is None:
            raise RuntimeError("DemandDataModule.setup() has not run")
        batches = math.ceil(math.ceil(len(self.train_set) / trainer.world_size) / self.batch_size)
        limit = trainer.limit_train_batches
        return int(batches * limit) if isinstance(limit, float) else min(batches, int(limit))

    def _progress(self) -> tuple[int, int]:
        """(epoch, batches of it already trained) as a training iteration starts, from the Trainer's public
        counters; the batch count is 0 except right after a resume from a checkpoint saved mid-epoch.

        Lightning makes the first iterator before it knows the number of batches, so they are counted here.
        """
        trainer = self.trainer
        if trainer is None:
            return 0, 0
        epoch, batches, accumulate = (
            trainer.current_epoch,
            self.train_batches_per_epoch(trainer),
            trainer.accumulate_grad_batches,
        )
        done = (trainer.global_step - epoch * math.ceil(batches / accumulate)) * accumulate
        return epoch, min(max(done, 0), batches)


_META = ("item_id", "image_name")  # per-row strings that travel with the arrays but are no batch keys


def _meta(frame: pd.DataFrame) -> dict[str, np.ndarray]:
    return {
        "item_id": frame[schema.ID].to_numpy(dtype=str),
        "image_name": frame[schema.IMAGE].fillna("").to_numpy(dtype=str),
    }
