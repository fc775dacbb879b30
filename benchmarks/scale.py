"""Scale: the generator makes N rows of table and text (photos off, 1.5M by default), the DataModule fits and
transforms them (time and peak memory of that process), then training with the image branch off over a fifth of an
epoch (a tenth with --quick; the rate is steady long before): its samples/s and the memory of each DataLoader
worker at the start and end.

Worker memory is read as RSS and as USS (pages private to the worker): a forked worker's RSS rises as it touches
the parent's shared arrays, which costs nothing; USS is what grows when per-row Python objects get copied. Both
are read at batch 2, after the warm-up (batch 50: the first batches set up the worker's buffers and the prefetch
queue; the training process rewriting its own heap likely leaves more of the worker's pages private to it) and at
the end. "Must not grow" is judged on RSS, start to end (the resident memory); USS growth after the warm-up is
reported per 100,000 samples.

    python -m benchmarks.scale [--quick] [--rows N]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

from benchmarks.common import ROOT, WORK

ROWS, QUICK_ROWS = 1_500_000, 150_000
WARMED = 50  # batch at which the worker's memory has settled (see the module doc)


def _generate(rows: int) -> tuple[Path, float | None]:
    from demandnet.data.synthetic import ensure_synthetic

    root = WORK / "data" / f"scale-{rows}"
    already = (root / "train.csv").is_file()
    started = time.perf_counter()
    ensure_synthetic(root, n_train=rows, n_test=0, seed=0, with_images=False)
    return root, None if already else time.perf_counter() - started


def _worker_memory() -> dict[str, float]:
    import psutil

    workers = psutil.Process().children(recursive=True)
    info = [w.memory_full_info() for w in workers]
    return {
        "rss_gb": max((i.rss for i in info), default=0) / 1e9,
        "uss_gb": max((i.uss for i in info), default=0) / 1e9,
    }


def _prep_and_epoch(root: str, quick: bool) -> dict:
    """Runs in its own process, so that the peak memory is this work's alone."""
    import pytorch_lightning as pl

    from benchmarks.common import config, peak_rss_gb
    from demandnet import batch as keys
    from demandnet.train import build

    # one DataLoader worker, whose memory is measured (auto gives none on a CPU-only machine with 2 cores)
    cfg = config(f"data.root={root}", "data.test_csv=null", "data.synthetic=null", "model/image=none",
                 "data.cache=false", "data.num_workers=1")  # fmt: skip
    started = time.perf_counter()
    datamodule, model = build(cfg)  # read, fit and encode: what the first run on a data set does
    prep = time.perf_counter() - started
    prep_rss = peak_rss_gb()

    class Probe(pl.Callback):
        def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
            if batch_idx == 2:
                self.start, self.memory_start, self.samples = time.perf_counter(), _worker_memory(), 0
            elif batch_idx > 2:
                self.samples += len(batch[keys.INDEX])
            if batch_idx == WARMED:
                self.memory_warm, self.samples_warm = _worker_memory(), self.samples

        def on_train_epoch_end(self, trainer, pl_module) -> None:
            self.rate = self.samples / (time.perf_counter() - self.start)
            self.memory_end = _worker_memory()

    probe = Probe()
    trainer = pl.Trainer(accelerator="auto", devices=1, max_epochs=1, limit_val_batches=0, logger=False,
                         enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
                         use_distributed_sampler=False, callbacks=[probe],
                         limit_train_batches=0.1 if quick else 0.2)  # fmt: skip
    trainer.fit(model, datamodule=datamodule)
    return {
        "scale_prep_seconds": prep,
        "scale_peak_rss_gb": prep_rss,
        "scale_train_rows": len(datamodule.train_set),
        "scale_epoch_samples_per_s": probe.rate,
        "scale_epoch_fraction": 0.1 if quick else 0.2,
        "scale_worker_rss_gb_start": probe.memory_start["rss_gb"],
        "scale_worker_rss_gb_end": probe.memory_end["rss_gb"],
        "scale_worker_uss_gb_start": probe.memory_start["uss_gb"],
        "scale_worker_uss_gb_end": probe.memory_end["uss_gb"],
        "scale_worker_rss_mb_growth": (probe.memory_end["rss_gb"] - probe.memory_start["rss_gb"]) * 1e3,
        "scale_worker_uss_gb_warmed": probe.memory_warm["uss_gb"],
        "scale_worker_samples_after_warm_up": probe.samples - probe.samples_warm,
        # MB of worker USS per 100,000 samples after the warm-up
        "scale_worker_uss_mb_growth_per_100k_samples": (probe.memory_end["uss_gb"] - probe.memory_warm["uss_gb"])
        * 1e3
        / max(probe.samples - probe.samples_warm, 1)
        * 1e5,
        "scale_dataloader_workers": datamodule.num_workers,
    }


def measure(quick: bool = False, rows: int | None = None) -> dict:
    rows = rows or (QUICK_ROWS if quick else ROWS)
    root, generate_seconds = _generate(rows)
    args = [sys.executable, "-m", "benchmarks.scale", "--child", str(root)] + (["--quick"] if quick else [])
    done = subprocess.run(args, check=False, cwd=ROOT, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"scale child failed:\n{done.stderr[-4000:]}")
    child = json.loads(done.stdout.strip().splitlines()[-1])
    return {"scale_rows": rows, "scale_generate_seconds": generate_seconds, **child}


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--rows", type=int)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(_prep_and_epoch(args.child, args.quick)))
    else:
        print(json.dumps(measure(args.quick, args.rows), indent=2))
