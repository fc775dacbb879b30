"""A callback for fault tests: the process kills itself (SIGKILL, no cleanup) after a given optimizer step."""

import os
import signal

import pytorch_lightning as pl


class CrashAfterStep(pl.Callback):
    def __init__(self, step: int) -> None:
        self.step = step

    def on_train_batch_end(self, trainer: pl.Trainer, *_: object) -> None:
        # Runs before the ModelCheckpoint callbacks (Lightning orders them last): this step's checkpoint is lost too.
        if trainer.global_step == self.step:
            os.kill(os.getpid(), signal.SIGKILL)
