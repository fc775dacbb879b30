"""What every experiment tracker (conf/logger/) gets as the run's hyperparameters: the whole resolved config.

The model saves its own constructor arguments for the checkpoint (`save_hyperparameters(logger=False)`); the
trackers get the config the run was launched with instead, which also holds the data, trainer and seed settings,
plus the sizes the model took from the data. `HparamsMetric` gives TensorBoard's HPARAMS tab the final val/rmse.
"""

from __future__ import annotations

from typing import Any

import pytorch_lightning as pl
from omegaconf import DictConfig, OmegaConf
from pytorch_lightning.loggers import Logger, TensorBoardLogger
from pytorch_lightning.trainer.states import TrainerFn

PLAIN = (str, int, float, bool, type(None))


def run_hyperparameters(cfg: DictConfig, model_hparams: dict[str, Any] | None = None) -> dict[str, Any]:
    """The resolved config as nested plain dicts and lists, plus `data_sizes` (vocabulary sizes, cardinalities and
    the train target mean that the model was built with). Raises if anything in it is not a plain value."""
    params = OmegaConf.to_container(cfg, resolve=True, throw_on_missing=False)
    hparams = dict(model_hparams or {})
    params["data_sizes"] = {"dims": hparams.get("dims"), "target_mean": hparams.get("target_mean")}
    _check_plain(params, "config")
    return params


def _check_plain(value: Any, where: str) -> None:
    if isinstance(value, dict):
        for key, item in value.items():
            _check_plain(item, f"{where}.{key}")
    elif isinstance(value, (list, tuple)):
        for index, item in enumerate(value):
            _check_plain(item, f"{where}[{index}]")
    elif not isinstance(value, PLAIN):
        raise TypeError(f"hyperparameter {where} is a {type(value).__name__}, not a plain value")


def log_run_config(loggers: list[Logger], cfg: DictConfig, model_hparams: dict[str, Any] | None = None) -> None:
    """Each logger flattens the nested dict as it needs (MLflow and TensorBoard `a/b/c` keys, W&B nested)."""
    params = run_hyperparameters(cfg, model_hparams) if loggers else {}
    for logger in loggers:
        logger.log_hyperparams(params)  # Lightning's loggers log on rank 0 only


class HparamsMetric(pl.Callback):
    """TensorBoard's HPARAMS tab pairs a run's hyperparameters with the metrics given when they are logged. Once
    train.run has validated the best checkpoint, log them again with its RMSE as `hp/val_rmse` (a tag of its own:
    the val/rmse curve stays as it is). Does nothing without logger=tensorboard."""

    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        rmse = trainer.callback_metrics.get("val/rmse")
        if trainer.state.fn != TrainerFn.VALIDATING or trainer.sanity_checking or rmse is None:
            return
        for logger in trainer.loggers:
            if isinstance(logger, TensorBoardLogger):
                logger.log_hyperparams(logger.hparams, {"hp/val_rmse": float(rmse)})
