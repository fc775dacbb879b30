"""run(cfg): seed, build the DataModule and the model, fit, validate the best checkpoint, write metrics and submission."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytorch_lightning as pl
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from demandnet.data.datamodule import DemandDataModule
from demandnet.data.images import resolve_image_config
from demandnet.distributed import check_same_on_every_rank, processes_asked
from demandnet.models.regressor import DemandRegressor
from demandnet.multinode import refuse_a_per_node_run_dir
from demandnet.outputs import write_json, write_submission
from demandnet.photo_fallbacks import PhotoFallbacks
from demandnet.predictions import predict_in_order
from demandnet.report.collect import write_run_report
from demandnet.summary import log_summary
from demandnet.tracking import log_run_config

log = logging.getLogger(__name__)


def build(cfg: DictConfig) -> tuple[DemandDataModule, DemandRegressor]:
    """The DataModule (set up: preprocessing fitted on the train split) and the model sized from it."""
    model_cfg = OmegaConf.to_container(cfg.model, resolve=True)
    image_cfg = model_cfg.pop("image", None) or None
    text_cfg = model_cfg.pop("text", None) or None
    tokenizer = instantiate(text_cfg.pop("tokenizer")) if text_cfg else None
    image_config = resolve_image_config(image_cfg["name"], image_cfg.get("img_size")) if image_cfg else None
    datamodule: DemandDataModule = instantiate(
        cfg.data, text_tokenizer=tokenizer, image_config=image_config, _convert_="all"
    )
    datamodule.prepare_data()
    datamodule.setup("fit")
    branches = {"image": image_cfg, "text": text_cfg, "tabular": model_cfg.pop("tabular", None) or None}
    model = DemandRegressor(
        branches=branches, dims=datamodule.model_dims(), target_mean=datamodule.train_target_mean, **model_cfg
    )
    text_branch = dict(model.branches.items()).get("text")
    if text_branch is not None and hasattr(text_branch, "load_pretrained_embeddings"):
        text_branch.load_pretrained_embeddings(tokenizer.pretrained_embeddings())
    return datamodule, model


def resume_from(cfg: DictConfig, run_dir: Path) -> str | None:
    """`ckpt_path` if given; with `resume=true`, this run directory's last checkpoint when there is one."""
    if cfg.get("ckpt_path"):
        return str(cfg.ckpt_path)
    if not cfg.get("resume"):
        return None
    last = run_dir / "checkpoints" / "last.ckpt"
    if last.is_file():
        log.info("resuming from %s", last)
        return str(last)
    log.warning("resume=true but %s does not exist: training from the start", last)
    return None


def refuse_a_used_run_dir(cfg: DictConfig, run_dir: Path) -> None:
    """A new run in a directory that holds one would overwrite its checkpoints: only a resume may go there."""
    earlier = sorted((run_dir / "checkpoints").glob("*.ckpt")) if (run_dir / "checkpoints").is_dir() else []
    if earlier and not cfg.get("resume") and not cfg.get("ckpt_path"):
        raise SystemExit(
            f"demandnet: {run_dir} already holds a run ({earlier[0].name}); resume=true continues it, another "
            "hydra.run.dir starts a new one"
        )


def refuse_ddp_in_a_sweep(cfg: DictConfig) -> None:
    """Lightning starts DDP's other processes by running this script again with its command line: in a hydra
    sweep each of them would start a sweep of its own. Refuse before anything starts."""
    strategy = str(cfg.trainer.get("strategy", "auto"))
    several = processes_asked(OmegaConf.to_container(cfg.trainer, resolve=True)) * int(cfg.trainer.num_nodes) > 1
    if "ddp" in strategy and "spawn" not in strategy and several and HydraConfig.get().mode == RunMode.MULTIRUN:
        raise SystemExit(
            "demandnet: trainer=ddp with several processes cannot run inside a hydra --multirun sweep (each DDP "
            "process would start its own sweep). Run each sweep value as its own `python train.py ...` command, "
            "or sweep on one device per job."
        )


def _unusable_photos(trainer: pl.Trainer) -> dict[str, int]:
    """Per stage, the photos on disk that the last epoch could not use (see PhotoFallbacks)."""
    counters = [c for c in trainer.callbacks if isinstance(c, PhotoFallbacks)]
    return dict(counters[0].totals) if counters else {}


def run(cfg: DictConfig) -> float:
    """Train as configured; returns the best validation RMSE (what a hydra sweeper minimises), with `cv.folds` > 1
    the out-of-fold RMSE of a k-fold run (demandnet.cv)."""
    if ((cfg.get("cv") or {}).get("folds") or 1) > 1:
        from demandnet.cv import run_folds

        return run_folds(cfg)
    return train_one(cfg).metrics["val_rmse"]


@dataclass
class Trained:
    """What one training run leaves in memory, for a caller (demandnet.cv) that predicts more with it."""

    trainer: pl.Trainer
    model: DemandRegressor
    datamodule: DemandDataModule
    best: str | None  # the `ckpt_path` that selects the best checkpoint in trainer.predict
    metrics: dict
    test_predictions: np.ndarray | None  # in test-file order, on every process


def train_one(cfg: DictConfig) -> Trained:
    """Fit, validate the best checkpoint, write metrics.json and submission.csv into `cfg.paths.output_dir`."""
    started = time.time()
    run_dir = Path(cfg.paths.output_dir)
    refuse_ddp_in_a_sweep(cfg)
    refuse_a_per_node_run_dir(cfg)
    refuse_a_used_run_dir(cfg, run_dir)
    pl.seed_everything(cfg.seed, workers=True)
    datamodule, model = build(cfg)
    callbacks = [instantiate(c) for c in (cfg.get("callbacks") or {}).values() if c]
    loggers = [instantiate(c) for c in (cfg.get("logger") or {}).values() if c]
    trainer: pl.Trainer = instantiate(cfg.trainer, callbacks=callbacks, logger=loggers or False)
    log_run_config(trainer.loggers, cfg, dict(model.hparams))
    trainer.fit(model, datamodule=datamodule, ckpt_path=resume_from(cfg, run_dir))
    best = "best" if trainer.checkpoint_callback and trainer.checkpoint_callback.best_model_path else None
    if best:
        check_same_on_every_rank(trainer.checkpoint_callback.best_model_path, "the best checkpoint")
    validated = trainer.validate(model, datamodule=datamodule, ckpt_path=best)[0]
    submission = predictions = None
    if datamodule.test_set is not None and trainer.fast_dev_run:
        trainer.predict(model, datamodule=datamodule)  # the smoke test runs one batch of prediction too
        log.info("debug=fdr predicts one batch only, so it writes no submission.csv")
    elif datamodule.test_set is not None:
        predictions = predict_in_order(trainer, model, datamodule, ckpt_path=best)
        submission = run_dir / "submission.csv"
        if trainer.is_global_zero:
            write_submission(submission, datamodule.test_set.item_ids, predictions)
    metrics = {
        "val_rmse": float(validated["val/rmse"]),
        "val_loss": float(validated["val/loss"]),
        **datamodule.baselines,
        "n_train": len(datamodule.train_set),
        "n_val": len(datamodule.val_set),
        "n_test": len(datamodule.test_set) if datamodule.test_set is not None else 0,
        "epochs": trainer.current_epoch,
        "unusable_photos": _unusable_photos(trainer),
        "best_checkpoint": str(Path(trainer.checkpoint_callback.best_model_path).resolve()) if best else None,
        "submission": str(submission) if submission else None,
        "wall_seconds": round(time.time() - started, 1),
    }
    if trainer.is_global_zero:
        write_json(run_dir / "metrics.json", metrics)
    if cfg.get("report", True):
        write_run_report(trainer, model, datamodule, run_dir, ckpt_path=best)  # report/: plots, ablation, html
    if trainer.is_global_zero:
        log_summary(metrics, run_dir)
    return Trained(trainer, model, datamodule, best, metrics, predictions)
