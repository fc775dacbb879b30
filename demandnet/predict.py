"""Predict from a checkpoint alone:

    python -m demandnet.predict ckpt_path=CKPT input_csv=CSV output_csv=OUT [image_dir=DIR] [trainer.devices=N]

Writes `item_id,deal_probability`: one row per input row, in input order, values in [0, 1].
"""

from __future__ import annotations

import logging
import sys
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import pytorch_lightning as pl
import torch
from omegaconf import OmegaConf

from demandnet.cli import parse_args
from demandnet.data.datamodule import DemandDataModule
from demandnet.data.schema import DataError
from demandnet.distributed import die_with_launcher
from demandnet.frozen_features import FrozenImageFeatures
from demandnet.models.regressor import DemandRegressor
from demandnet.outputs import write_submission
from demandnet.photo_fallbacks import PhotoFallbacks
from demandnet.predictions import predict_in_order

log = logging.getLogger("demandnet.predict")


@dataclass
class PredictTrainer:
    accelerator: str = "auto"
    devices: int = 1
    num_nodes: int = 1
    precision: str = "32-true"


@dataclass
class PredictConfig:
    ckpt_path: str = "???"
    input_csv: str = "???"
    output_csv: str = "???"
    image_dir: str | None = None
    strict_images: bool | None = None  # None: as in training; true: a bad photo is an error naming the file
    bad_photo_log: str | None = None  # a file to list every unusable photo in (item_id, file, reason)
    batch_size: int = 256
    num_workers: str = "auto"
    # a frozen image branch: reuse (and fill) the on-disk feature cache; None: $DEMANDNET_CACHE_DIR or ~/.cache
    feature_cache: bool = True
    feature_cache_dir: str | None = None
    trainer: PredictTrainer = field(default_factory=PredictTrainer)


def load_checkpoint(path: str | Path) -> dict:
    """Plain tensors and containers only: nothing in the file is executed."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint not found: {path}")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:
        if not zipfile.is_zipfile(path):  # torch.save writes a zip archive: this is text, empty or truncated
            raise ValueError(f"{path}: not a PyTorch checkpoint file ({type(err).__name__}: {err})") from err
        # a torch file that the weights-only unpickler will not build: it wants to run code
        raise ValueError(f"{path}: refused, it does not load with torch.load(weights_only=True): {err}") from err


def restore(
    checkpoint: dict, num_workers: str | int = "auto", batch_size: int = 256
) -> tuple[DemandDataModule, DemandRegressor]:
    """The fitted DataModule state and the model, rebuilt from a checkpoint dict (no hub, no data files)."""
    state = checkpoint.get(DemandDataModule.__qualname__) if isinstance(checkpoint, dict) else None
    if state is None or "hyper_parameters" not in checkpoint:
        raise ValueError("not a demandnet checkpoint: it lacks the DataModule state or the model hyperparameters")
    datamodule = DemandDataModule(root=".", num_workers=num_workers, eval_batch_size=batch_size)
    datamodule.load_state_dict(state)
    hparams = dict(checkpoint["hyper_parameters"])
    hparams["branches"] = DemandRegressor.inference_branches(hparams["branches"])
    hparams["compile"] = False  # a model trained compiled predicts as a plain one (same weights, same names)
    model = DemandRegressor(**hparams)
    model.load_state_dict(checkpoint["state_dict"])
    return datamodule, model.eval()


def run(cfg: PredictConfig) -> Path:
    datamodule, model = restore(load_checkpoint(cfg.ckpt_path), cfg.num_workers, cfg.batch_size)
    if cfg.strict_images is not None:
        datamodule.strict_images = bool(cfg.strict_images)
    datamodule.bad_photo_log = cfg.bad_photo_log
    dataset = datamodule.predict_set = datamodule.encode_for_prediction(cfg.input_csv, cfg.image_dir)
    trainer = pl.Trainer(
        **OmegaConf.to_container(cfg.trainer),
        strategy="ddp" if cfg.trainer.devices * cfg.trainer.num_nodes > 1 else "auto",
        use_distributed_sampler=False,
        logger=False,
        enable_checkpointing=False,
        enable_model_summary=False,
        callbacks=[PhotoFallbacks(), FrozenImageFeatures(cfg.feature_cache_dir, enabled=cfg.feature_cache)],
    )
    predictions = predict_in_order(trainer, model, datamodule)
    output = Path(cfg.output_csv)
    if trainer.is_global_zero:
        write_submission(output, dataset.item_ids, predictions)
        log.info("wrote %d predictions to %s", len(predictions), output)
    return output


def main(argv: list[str] | None = None) -> None:
    cfg = parse_args(PredictConfig, argv, __doc__, "demandnet.predict")
    if cfg is None:
        return
    die_with_launcher()
    try:
        run(cfg)
    except (DataError, FileNotFoundError, ValueError) as err:  # bad input: the message says it all
        sys.exit(f"demandnet.predict: {err}")


if __name__ == "__main__":
    main()
