"""pipeline_efficiency: training samples/s of the default model through the full demandnet path (DataModule
reading JPEGs from disk in DataLoader workers, Lightning Trainer) over samples/s of the same model stepping
(forward, backward, clip, optimiser) over the same batches held in memory in a bare loop, same thread budget.

    python -m benchmarks.pipeline [--quick]
"""

from __future__ import annotations

import argparse
import copy
import json
import statistics
import time

import pytorch_lightning as pl
import torch

from benchmarks.common import config
from demandnet import batch as keys
from demandnet.train import build

WARMUP = 5  # batches not timed: worker start-up, first allocations


class _BatchClock(pl.Callback):
    """Samples/s over the training batches after the warm-up ones."""

    def __init__(self) -> None:
        self.start, self.samples, self.rate = 0.0, 0, 0.0

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        if batch_idx == WARMUP:
            self.start, self.samples = time.perf_counter(), 0

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if batch_idx >= WARMUP:
            self.samples += len(batch[keys.INDEX])
            self.rate = self.samples / (time.perf_counter() - self.start)


def _full_path(datamodule, model, batches: int, cfg) -> float:
    clock = _BatchClock()
    trainer = pl.Trainer(accelerator="auto", devices=1, max_epochs=1, limit_train_batches=batches, limit_val_batches=0,
                         logger=False, enable_checkpointing=False, enable_progress_bar=False,
                         enable_model_summary=False, gradient_clip_val=cfg.trainer.gradient_clip_val,
                         use_distributed_sampler=False, callbacks=[clock])  # fmt: skip
    trainer.fit(model, datamodule=datamodule)
    return clock.rate


def _bare_loop(model, held: list[dict], clip: float) -> float:
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-3)
    model.train()
    samples, start = 0, 0.0
    for i, batch in enumerate(held):
        if i == WARMUP:
            samples, start = 0, time.perf_counter()
        loss = model._loss(model(batch), batch[keys.TARGET])
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), clip)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        samples += len(batch[keys.INDEX]) if i >= WARMUP else 0
    return samples / (time.perf_counter() - start)


def measure(quick: bool = False) -> dict:
    n_train, batches, repeats = (3000, 20, 3) if quick else (8000, 45, 3)
    cfg = config(f"data.synthetic.n_train={n_train}", "data.synthetic.n_test=100")
    datamodule, model = build(cfg)
    pristine = copy.deepcopy(model.state_dict())
    loader = iter(datamodule.train_dataloader())
    held = [next(loader) for _ in range(batches)]  # the same kind of batches, decoded once, in memory
    del loader
    full, bare = [], []
    for _ in range(repeats):  # interleaved, so background load hits both alike
        model.load_state_dict(pristine)
        full.append(_full_path(datamodule, model, batches, cfg))
        model.load_state_dict(pristine)
        bare.append(_bare_loop(model, held, cfg.trainer.gradient_clip_val))
    result = {
        "pipeline_efficiency": statistics.median(full) / statistics.median(bare),
        "pipeline_full_samples_per_s": statistics.median(full),
        "pipeline_bare_samples_per_s": statistics.median(bare),
        "pipeline_setup": {
            "n_train": n_train,
            "batches": batches,
            "warmup": WARMUP,
            "repeats": repeats,
            "batch_size": datamodule.batch_size,
            "dataloader_workers": datamodule.num_workers,
            "torch_threads": torch.get_num_threads(),
            "image": cfg.model.image.name,
            "img_size": cfg.model.image.img_size,
        },
    }
    return result


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true")
    print(json.dumps(measure(parser.parse_args().quick), indent=2))
