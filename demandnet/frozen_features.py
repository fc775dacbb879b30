"""With `model.image.freeze=true`, compute each photo's backbone features once and serve them from arrays.

A frozen backbone maps a photo to the same features in every epoch, run and prediction, so decoding and the CNN
forward pass are done once, stored in a `FeatureStore` on disk, and every later epoch reads a (N, F) array: the
image branch then skips its backbone (see `ImageBranch.forward`). The features come from the evaluation view of
each photo (resize + centre crop, as timm evaluates), so a frozen run trains without photo augmentation, as the
frozen-feature Avito solutions did.

Under DDP each rank computes and stores the photos of every world-th row, then reads the other ranks' entries.
"""

from __future__ import annotations

import functools
import logging

import numpy as np
import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader, Dataset
from tqdm.auto import tqdm

from demandnet import batch as keys
from demandnet.data.dataset import DemandDataset
from demandnet.data.feature_store import FeatureStore, default_cache_dir, digest_bytes, model_key
from demandnet.data.images import ImagePipeline
from demandnet.distributed import gather, world

log = logging.getLogger("demandnet.images")


class _PhotoRows(Dataset):
    """Row -> its photo's digest and cached features, or the decoded evaluation view when not cached yet."""

    def __init__(self, rows: np.ndarray, names: np.ndarray, item_ids: np.ndarray, pipeline: ImagePipeline,
                 store: FeatureStore) -> None:  # fmt: skip
        self.rows, self.names, self.item_ids, self.pipeline, self.store = rows, names, item_ids, pipeline, store

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, i: int) -> dict:
        row = int(self.rows[i])
        name, path = self.names[row], self.pipeline.locate(self.names[row])
        digest = digest_bytes(path.read_bytes()) if path is not None else ""
        cached = self.store.get(digest) if digest else None
        if cached is not None:
            return {"row": row, "digest": digest, "features": cached, "image": None}
        image, ok = self.pipeline(name, str(self.item_ids[row]))  # None, missing or bad: the pipeline's fallback
        return {"row": row, "digest": digest if ok else "", "features": None, "image": image if ok else None}


def _as_list(items: list[dict]) -> list[dict]:
    return items


class FrozenImageFeatures(pl.Callback):
    """Turns the photo column of every data set into cached features when the image branch is frozen."""

    def __init__(self, cache_dir: str | None = None, enabled: bool = True, batch_size: int = 128) -> None:
        self.cache_dir = default_cache_dir(cache_dir)
        self.enabled = enabled
        self.batch_size = batch_size
        self.computed = 0  # entries this process computed (the rest were read from the cache)
        self._write_failed = False

    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        branch = dict(pl_module.branches.items()).get("image") if hasattr(pl_module, "branches") else None
        datamodule = trainer.datamodule
        if not self.enabled or branch is None or not getattr(branch, "freeze", False) or datamodule is None:
            return
        names = ("train_set", "val_set", "predict_set")
        sets = [s for s in (getattr(datamodule, n, None) for n in names) if isinstance(s, DemandDataset)]
        todo = [s for s in sets if s.pipeline is not None and keys.IMAGE_FEATURES not in s.arrays]
        if not todo:
            return
        branch.backbone.to(trainer.strategy.root_device)
        key = model_key(branch.name, branch.backbone, todo[0].pipeline.config)
        store = FeatureStore(self.cache_dir, key, shape=(branch.out_dim - 1,))
        for dataset in todo:
            if keys.IMAGE_FEATURES in dataset.arrays:  # train and validation share one file's arrays
                dataset.pipeline = None
                continue
            self._featurize(trainer, branch, store, dataset, datamodule.num_workers)
            for other in sets:
                if other.arrays is dataset.arrays:
                    other.pipeline = None
        if trainer.is_global_zero:
            log.info("frozen image features: %s (%d computed by this process, the rest read from the cache)",
                     store.root, self.computed)  # fmt: skip

    @torch.no_grad()
    def _featurize(self, trainer: pl.Trainer, branch: torch.nn.Module, store: FeatureStore, dataset: DemandDataset,
                   workers: int) -> None:  # fmt: skip
        size, rank = world()
        n = len(dataset.images)
        pipeline = dataset.pipeline
        eval_view = ImagePipeline(pipeline.image_dirs, pipeline.config, train=False, strict=pipeline.strict,
                                  seed=pipeline.seed, bad_photo_log=pipeline.bad_photo_log)  # fmt: skip
        features = np.zeros((n, branch.out_dim - 1), dtype=np.float32)
        has_image = np.zeros(n, dtype=np.float32)
        run = functools.partial(self._compute, trainer, branch, store, dataset, eval_view, workers, features, has_image)
        digests = run(np.arange(rank, n, size), trainer.is_global_zero)
        # The other ranks' rows: their digests travel (small), their features are read from the store.
        unread = []
        for other_rank, theirs in enumerate(gather(digests)):
            if other_rank == rank:
                continue
            for row, digest in theirs.items():
                vector = store.get(digest)
                if vector is None:
                    unread.append(row)
                else:
                    features[row], has_image[row] = vector, 1.0
        if unread:  # a cache dir per node (not shared), or one that cannot be written: compute them here too
            log.warning("%d photo features computed by other processes are not in %s (is the cache directory on "
                        "a filesystem that all nodes share?): computing them in this process", len(unread),
                        store.root)  # fmt: skip
            run(np.asarray(sorted(unread)), False)
        dataset.arrays[keys.IMAGE_FEATURES] = features
        dataset.arrays[keys.HAS_IMAGE] = has_image

    def _compute(self, trainer: pl.Trainer, branch: torch.nn.Module, store: FeatureStore, dataset: DemandDataset,
                 eval_view: ImagePipeline, workers: int, features: np.ndarray, has_image: np.ndarray,
                 rows: np.ndarray, show: bool) -> dict[int, str]:  # fmt: skip
        """Fill `features` and `has_image` at `rows` from the store or the backbone; the digest of each usable photo."""
        photos = _PhotoRows(rows, dataset.images, dataset.item_ids, eval_view, store)
        loader = DataLoader(photos, batch_size=self.batch_size, num_workers=workers, collate_fn=_as_list)
        digests: dict[int, str] = {}
        was_training = branch.backbone.training
        branch.backbone.eval()
        for items in tqdm(loader, desc="image features", unit="batch", disable=not show or None):
            fresh = [item for item in items if item["image"] is not None]
            if fresh:
                images = torch.stack([item["image"] for item in fresh]).to(trainer.strategy.root_device)
                with trainer.precision_plugin.forward_context():
                    out = branch.backbone(images).float().cpu().numpy()  # (B, 3, H, W) -> (B, F)
                for item, vector in zip(fresh, out):
                    self._put(store, item["digest"], vector)
                    item["features"] = vector
                self.computed += len(fresh)
            for item in items:
                if item["features"] is not None:
                    features[item["row"]], has_image[item["row"]] = item["features"], 1.0
                    digests[item["row"]] = item["digest"]
        branch.backbone.train(was_training)
        return digests

    def _put(self, store: FeatureStore, digest: str, vector: np.ndarray) -> None:
        try:
            store.put(digest, vector)
        except OSError as e:  # a full or read-only disk: the features are in memory, the run goes on
            if not self._write_failed:
                log.warning("cannot write the image-feature cache %s (%s): this run keeps its features in memory only",
                            store.root, e)  # fmt: skip
            self._write_failed = True
