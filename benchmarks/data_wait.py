"""A Lightning callback that says how long the accelerator waits for data: the time from the end of one training
step to the start of the next (the DataLoader handing over a batch) against the step itself.

    python train.py +callbacks.data_wait._target_=benchmarks.data_wait.DataWait ...

On GPU each step end synchronises the device, so the step time is the real compute time (this costs a little
throughput; use it to measure, not in production runs). Writes data_wait.json into the run directory.
"""

from __future__ import annotations

import json
import statistics
import time
from pathlib import Path

import pytorch_lightning as pl
import torch

from demandnet import batch as keys

WARMUP = 20  # steps not counted: compilation, cuDNN autotuning, worker start-up


class DataWait(pl.Callback):
    def __init__(self) -> None:
        self.waits: list[float] = []
        self.steps: list[float] = []
        self.samples = 0
        self._seen = 0  # training steps started, over all epochs
        self._end = self._start = 0.0

    def _now(self, trainer: pl.Trainer) -> float:
        if trainer.strategy.root_device.type == "cuda":
            torch.cuda.synchronize(trainer.strategy.root_device)
        return time.perf_counter()

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        self._start = self._now(trainer)
        self._seen += 1
        if self._seen > WARMUP and batch_idx > 0:  # the first batch of an epoch waits for the epoch's start-up
            self.waits.append(self._start - self._end)

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        self._end = self._now(trainer)
        if self._seen > WARMUP:
            self.steps.append(self._end - self._start)
            self.samples += len(batch[keys.INDEX])

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if not self.steps or not trainer.is_global_zero:
            return
        total = sum(self.waits) + sum(self.steps)
        report = {
            "steps_measured": len(self.steps),
            "samples_per_s": self.samples / total * trainer.world_size,
            "data_wait_share": sum(self.waits) / total,
            "median_step_ms": statistics.median(self.steps) * 1000,
            "median_data_wait_ms": statistics.median(self.waits) * 1000,
            "device": str(trainer.strategy.root_device),
            "gpu": torch.cuda.get_device_name() if torch.cuda.is_available() else None,
        }
        print("data_wait:", json.dumps(report), flush=True)
        Path(trainer.default_root_dir).mkdir(parents=True, exist_ok=True)
        (Path(trainer.default_root_dir) / "data_wait.json").write_text(json.dumps(report, indent=2))
