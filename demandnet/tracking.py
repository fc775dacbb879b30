"""What every experiment tracker (conf/logger/) gets as the run's hyperparameters: the whole resolved config.

The model saves its own constructor arguments for the checkpoint (`save_hyperparameters(logger=False)`); the
trackers get the config the run was launched with instead, which also holds the data, trainer and seed settings,
plus the sizes the model took from the data. `FinishTrackers` closes a W&B run at the end of each hydra job.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf

if TYPE_CHECKING:  # hydra builds FinishTrackers before the job starts: keep Lightning out of that import
    from pytorch_lightning.loggers import Logger

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


class FinishTrackers(Callback):
    """A hydra callback: end the W&B run when a job ends, so the next job of a --multirun sweep starts its own run
    (WandbLogger would otherwise reuse the open one; a single run's ends at exit anyway)."""

    def on_job_end(self, config: DictConfig, job_return: Any, **kwargs: Any) -> None:
        wandb = sys.modules.get("wandb")  # imported only by a run that used logger=wandb
        if wandb is not None and getattr(wandb, "run", None) is not None:
            wandb.finish()
