"""DemandRegressor: image, text and tabular branches fused into one deal_probability in [0, 1]."""

from __future__ import annotations

import inspect
import logging
import math
from typing import Any

import pytorch_lightning as pl
import torch
import torch.nn.functional as F
from hydra.utils import instantiate
from torch import nn
from torchmetrics import MeanSquaredError

from demandnet import batch as keys
from demandnet.distributed import gather, world
from demandnet.models.fusion import FusionHead

LOSSES = ("mse", "bce")
log = logging.getLogger(__name__)


def _logit(p: float, eps: float = 1e-4) -> float:
    p = min(max(float(p), eps), 1 - eps)
    return math.log(p / (1 - p))


class DemandRegressor(pl.LightningModule):
    """Branch configs carry a `_target_`; data-derived sizes (`dims`, from the DataModule) are passed to them.
    `target_mean` (the train split's mean target) sets the output bias, so training starts at the mean prediction.

    All constructor arguments are plain dicts, lists and numbers, so they are saved as hyperparameters and the
    checkpoint alone rebuilds the model (see `inference_branches`).
    """

    def __init__(
        self,
        branches: dict[str, dict | None],
        dims: dict[str, dict],
        fusion: dict | None = None,
        loss: str = "mse",
        optimizer: dict | None = None,
        scheduler: dict | None = None,
        target_mean: float | None = None,
        compile: bool = False,
        compile_options: dict | None = None,
    ) -> None:
        super().__init__()
        if loss not in LOSSES:
            raise ValueError(f"model.loss must be one of {LOSSES}, got {loss!r}")
        self.save_hyperparameters(logger=False)  # the trackers get the whole run config (demandnet.tracking)
        active = {name: cfg for name, cfg in branches.items() if cfg}
        if not active:
            raise ValueError(
                "every branch is switched off: keep at least one of model.image, model.text, model.tabular"
            )
        self.branches = nn.ModuleDict(
            {name: instantiate(cfg, **dims.get(name, {}), _convert_="all") for name, cfg in active.items()}
        )
        bias = _logit(target_mean) if target_mean is not None else 0.0
        self.fusion = FusionHead([b.out_dim for b in self.branches.values()], **(fusion or {}), output_bias=bias)
        self.loss_name = loss
        self._restoring: dict | None = None
        self._compiled = False
        self.val_rmse = MeanSquaredError(squared=False)

    def configure_model(self) -> None:
        """Lightning calls this before fit, validate and predict. `nn.Module.compile` compiles in place, so the
        parameter names, and with them the checkpoints, are those of the plain model."""
        if self.hparams.get("compile") and not self._compiled:
            for module in [*self.branches.values(), self.fusion]:
                module.compile(**(self.hparams.get("compile_options") or {}))
            self._compiled = True

    def forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """(B,) logits; `torch.sigmoid` of them is the predicted deal_probability."""
        return self.fusion([branch(batch) for branch in self.branches.values()])

    def _loss(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        logits = logits.float()  # the loss in fp32 even under bf16 autocast
        if self.loss_name == "bce":
            return F.binary_cross_entropy_with_logits(logits, target)  # soft targets in [0, 1]
        return F.mse_loss(torch.sigmoid(logits), target)

    def training_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> torch.Tensor:
        loss = self._loss(self(batch), batch[keys.TARGET])
        self.log("train/loss", loss, on_step=True, on_epoch=True, prog_bar=True, batch_size=len(batch[keys.INDEX]))
        return loss

    def validation_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> None:
        logits = self(batch)
        target = batch[keys.TARGET]
        size = len(target)
        self.log("val/loss", self._loss(logits, target), sync_dist=True, batch_size=size)
        self.val_rmse(torch.sigmoid(logits.float()), target)
        # torchmetrics sums squared errors and counts over all processes, so the epoch RMSE is exact under DDP.
        self.log("val/rmse", self.val_rmse, on_epoch=True, prog_bar=True, batch_size=size)

    def predict_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> dict[str, torch.Tensor]:
        return {keys.INDEX: batch[keys.INDEX], "prediction": torch.sigmoid(self(batch).float())}

    def configure_optimizers(self) -> Any:
        params = [p for p in self.parameters() if p.requires_grad]
        optimizer = instantiate(self.hparams.optimizer or {"_target_": "torch.optim.AdamW", "lr": 1e-3}, params=params)
        if not self.hparams.scheduler:
            return optimizer
        factory = instantiate(self.hparams.scheduler)
        accepted = inspect.signature(factory.func if hasattr(factory, "func") else factory).parameters
        steps = self._stepping_batches()
        extra = {k: steps for k in ("total_steps", "T_max") if k in accepted}
        scheduler = factory(optimizer, **extra)
        self._fit_resumed_schedule(scheduler, extra)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}

    def _fit_resumed_schedule(self, scheduler: Any, length: dict[str, int]) -> None:
        """A resume that trains longer (or shorter) than the checkpoint planned: Lightning would restore the old
        schedule, which ends (OneCycleLR raises) at the old length. Keep the new one, at the checkpoint's step."""
        saved = (self._restoring or {}).get("lr_schedulers") or [None]
        self._restoring = None
        if not saved[0] or all(saved[0].get(k) == v for k, v in length.items()):
            return
        planned = {k: saved[0].get(k) for k in length}
        state = {**scheduler.state_dict(), **{k: saved[0][k] for k in ("last_epoch", "_step_count") if k in saved[0]}}
        saved[0].clear()
        saved[0].update(state)  # the dict Lightning restores the scheduler from, right after this
        log.warning("the checkpoint planned a schedule of %s steps, this run %s: continuing on the new schedule",
                    planned, length)  # fmt: skip

    def _stepping_batches(self) -> int:
        """Lightning's `estimated_stepping_batches`, counted from the DataModule's sizes when it can say them.

        Lightning's own count builds the train iterator, here before a resume has restored the loop counters, and
        its DataLoader workers would then start the interrupted epoch from its first batch.
        """
        trainer = self.trainer
        per_epoch = getattr(trainer.datamodule, "train_batches_per_epoch", None)
        if per_epoch is None or trainer.max_epochs == -1:
            return int(trainer.estimated_stepping_batches)
        steps = math.ceil(per_epoch(trainer) / trainer.accumulate_grad_batches) * max(trainer.max_epochs or 1, 1)
        return min(steps, trainer.max_steps) if trainer.max_steps != -1 else steps

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        # Every process's dropout stream, so a run resumed from a mid-epoch checkpoint continues them exactly.
        # Lightning builds the checkpoint on every rank (rank 0 writes it), so gathering here is safe.
        mine = {"torch": torch.get_rng_state()}
        if torch.cuda.is_available() and torch.cuda.is_initialized():
            mine["cuda"] = torch.cuda.get_rng_state(torch.cuda.current_device())
        checkpoint["rng_states"] = {"per_rank": gather(mine)}

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        # Lightning loads the weights right after this hook and the DataModule's state only later: check here that
        # the checkpoint's preprocessing is the one this run fitted, before a size mismatch or another split.
        datamodule = self._trainer.datamodule if self._trainer is not None else None
        if hasattr(datamodule, "check_same_fit"):
            datamodule.check_same_fit(checkpoint.get(type(datamodule).__qualname__) or {})
        self._restoring = checkpoint  # configure_optimizers, which runs next, may adjust its scheduler state
        per_rank = (checkpoint.get("rng_states") or {}).get("per_rank") or []
        size, rank = world()
        if len(per_rank) != size:
            if per_rank:
                log.warning("the checkpoint holds the random state of %d processes, this run has %d: dropout "
                            "draws differ from the interrupted run", len(per_rank), size)  # fmt: skip
            return
        torch.set_rng_state(per_rank[rank]["torch"])
        if "cuda" in per_rank[rank] and torch.cuda.is_available():
            torch.cuda.set_rng_state(per_rank[rank]["cuda"], torch.cuda.current_device())

    @staticmethod
    def inference_branches(branches: dict[str, dict | None]) -> dict[str, dict | None]:
        """Branch configs for rebuilding from a checkpoint: no hub download, no weights file; the state dict follows."""
        rebuilt = {}
        for name, cfg in branches.items():
            cfg = dict(cfg) if cfg else cfg
            if cfg and "pretrained" in cfg:
                cfg["pretrained"] = False
            if cfg and "checkpoint_path" in cfg:
                cfg["checkpoint_path"] = None
                cfg["weights_from_checkpoint"] = True
            rebuilt[name] = cfg
        return rebuilt
