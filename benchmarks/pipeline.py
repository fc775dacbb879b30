"""pipeline_efficiency: training samples/s of the default model through the full demandnet path (DataModule with
its default loaders, num_workers=auto; Lightning Trainer) over samples/s of the same model stepping (forward, backward, clip,
optimiser) over the same batches held in memory in a bare loop, same thread budget. Two full paths:

- pipeline_efficiency: the default, as every epoch after the first runs: photo files read, their decoded pixels
  found in the decoded-photo cache (data.photo_cache), cropped and normalised;
- pipeline_efficiency_decoding: every photo decoded from its JPEG file, as in the first epoch or with
  data.photo_cache=false.

    python -m benchmarks.pipeline [--quick]
"""

from __future__ import annotations

import argparse
import copy
import json
import shutil
import statistics
import time

import pytorch_lightning as pl
import torch

from benchmarks.common import WORK, config
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
    n_train, batches, repeats = (3000, 19, 5) if quick else (8000, 45, 5)
    cache_dir = WORK / "pipeline-cache"
    shutil.rmtree(cache_dir, ignore_errors=True)
    data = [f"data.synthetic.n_train={n_train}", "data.synthetic.n_test=100", f"data.cache_dir={cache_dir}"]
    cfg = config(*data)
    datamodule, model = build(cfg)
    decoding, _ = build(config(*data, "data.photo_cache=false"))
    pristine = copy.deepcopy(model.state_dict())
    loader = iter(datamodule.train_dataloader())
    # the same batches the Trainer will draw (epoch 0's order), decoded once and held in memory; drawing them also
    # fills the decoded-photo cache for those rows, so the default path then runs as in a later epoch
    held = [next(loader) for _ in range(batches)]
    del loader
    cached, decoded, bare = [], [], []
    for _ in range(repeats):  # interleaved, so background load hits all three alike
        model.load_state_dict(pristine)
        cached.append(_full_path(datamodule, model, batches, cfg))
        model.load_state_dict(pristine)
        decoded.append(_full_path(decoding, model, batches, cfg))
        model.load_state_dict(pristine)
        bare.append(_bare_loop(model, held, cfg.trainer.gradient_clip_val))
    bare_rate = statistics.median(bare)
    return {
        "pipeline_efficiency": statistics.median(cached) / bare_rate,
        "pipeline_efficiency_decoding": statistics.median(decoded) / bare_rate,
        "pipeline_full_samples_per_s": statistics.median(cached),
        "pipeline_decoding_samples_per_s": statistics.median(decoded),
        "pipeline_bare_samples_per_s": bare_rate,
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


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true")
    print(json.dumps(measure(parser.parse_args().quick), indent=2))
