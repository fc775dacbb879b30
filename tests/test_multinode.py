"""Multi-node DDP on CPU: two torchrun "nodes" on this machine (gloo, master on 127.0.0.1) sharing one run dir."""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from demandnet.data.schema import read_table
from demandnet.data.split import split_rows
from demandnet.multinode import launcher_rank, rank_overrides
from tests.conftest import FAST, ROOT, run_cli

TORCHRUN = {"TORCHELASTIC_RUN_ID": "job", "RANK": "1", "LOCAL_RANK": "0", "WORLD_SIZE": "2"}


@pytest.mark.parametrize(
    ("environ", "rank"),
    [({}, None), ({"LOCAL_RANK": "1"}, None), (TORCHRUN, 1), ({**TORCHRUN, "RANK": "0"}, 0),
     ({"SLURM_NTASKS": "4", "SLURM_PROCID": "3"}, 3), ({"SLURM_NTASKS": "1", "SLURM_PROCID": "0"}, None)],
)  # fmt: skip
def test_the_launcher_rank_comes_from_torchrun_or_srun_only(environ, rank):
    assert launcher_rank(environ) == rank  # Lightning's own DDP children (LOCAL_RANK only) get theirs from it


def test_only_ranks_above_zero_keep_out_of_dot_hydra():
    assert rank_overrides(["train.py"], TORCHRUN) == ["hydra.output_subdir=null", "hydra.job.name=train_ddp_process_1"]
    assert rank_overrides(["train.py"], {**TORCHRUN, "RANK": "0"}) == []
    assert rank_overrides(["train.py", "hydra.output_subdir=null"], TORCHRUN) == []  # as Lightning's children have


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _two_nodes(args: list[str], cwd: Path, logs: Path, timeout: int = 300) -> list[str]:
    """Run `torchrun --nnodes=2 --nproc-per-node=1 ARGS` as node 0 and node 1 at once; their output, or fail."""
    port, env = _free_port(), {**os.environ, "PYTHONUNBUFFERED": "1", "HYDRA_FULL_ERROR": "1"}
    logs.mkdir(parents=True, exist_ok=True)
    with contextlib.ExitStack() as stack:
        nodes = []
        for rank in (0, 1):
            out = stack.enter_context(open(logs / f"node{rank}.txt", "w"))  # not a pipe: a full one stalls its node
            command = [sys.executable, "-m", "torch.distributed.run", "--nnodes=2", "--nproc-per-node=1",
                       f"--node-rank={rank}", "--master-addr=127.0.0.1", f"--master-port={port}", *args]  # fmt: skip
            nodes.append(subprocess.Popen(command, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT))
        try:
            codes = [node.wait(timeout=timeout) for node in nodes]
        finally:
            for node in nodes:
                if node.poll() is None:
                    node.kill()
                    node.wait()
    texts = [(logs / f"node{rank}.txt").read_text() for rank in (0, 1)]
    if any(codes):
        pytest.fail(
            f"torchrun nodes exited {codes}\n" + "\n".join(f"--- node {r}\n{t[-4000:]}" for r, t in enumerate(texts))
        )
    return texts


@pytest.mark.slow
def test_two_nodes_train_and_predict_as_one_process(tiny_data, tmp_path):
    """11 validation rows in batches of 4 over 2 nodes; the run dir is on the "shared filesystem" (one path that
    both nodes see). Only global rank 0 writes the results; rank 1 writes its log beside them, nothing else."""
    run = tmp_path / "shared" / "run"
    _two_nodes([str(ROOT / "train.py"), f"hydra.run.dir={run}", "data=avito", f"data.root={tiny_data}", *FAST,
                "model/image=none", "trainer=ddp", "trainer.devices=1", "trainer.num_nodes=2",
                "data.val_fraction=0.0458", "data.eval_batch_size=4", "data.seed=5"], tmp_path, tmp_path / "train")  # fmt: skip
    assert sorted(p.name for p in run.iterdir()) == [
        ".hydra", "ablation.json", "checkpoints", "csv", "metrics.json", "report", "submission.csv", "train.log",
        "train_ddp_process_1.log", "val_predictions.csv",
    ]  # fmt: skip
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == ["best.ckpt", "last.ckpt"]
    assert "GLOBAL_RANK: 1" in (run / "train_ddp_process_1.log").read_text()
    assert "GLOBAL_RANK: 1" not in (run / "train.log").read_text()
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["n_val"] == 11 and metrics["best_checkpoint"] == str(run.resolve() / "checkpoints/best.ckpt")
    test_ids = read_table(tiny_data / "test.csv").item_id.tolist()
    assert pd.read_csv(run / "submission.csv").item_id.tolist() == test_ids

    frame = read_table(tiny_data / "train.csv", require_target=True)
    _, val_rows = split_rows(frame, 0.0458, "random", seed=5)
    frame.iloc[val_rows].to_csv(tmp_path / "val.csv", index=False)
    ckpt, io = run / "checkpoints/best.ckpt", [f"input_csv={tmp_path / 'val.csv'}", "batch_size=4"]
    run_cli(["-m", "demandnet.predict", f"ckpt_path={ckpt}", *io, f"output_csv={tmp_path / 'one.csv'}"])
    one = pd.read_csv(tmp_path / "one.csv")
    offline = np.sqrt(np.mean((one.deal_probability - frame.deal_probability.iloc[val_rows].to_numpy()) ** 2))
    assert metrics["val_rmse"] == pytest.approx(offline, abs=2e-5)

    _two_nodes(["-m", "demandnet.predict", f"ckpt_path={ckpt}", *io, f"output_csv={tmp_path / 'two.csv'}",
                "trainer.num_nodes=2"], tmp_path, tmp_path / "predict")  # fmt: skip
    two = pd.read_csv(tmp_path / "two.csv")
    assert two.item_id.tolist() == one.item_id.tolist()
    assert np.abs(one.deal_probability - two.deal_probability).max() <= 1e-5
    assert sorted(p.name for p in tmp_path.glob("*.csv")) == ["one.csv", "two.csv", "val.csv"]


@pytest.mark.slow
def test_several_nodes_without_a_named_run_dir_are_refused(tiny_data, tmp_path):
    args = [str(ROOT / "train.py"), "trainer.num_nodes=2", "data=avito", f"data.root={tiny_data}", *FAST]
    done = subprocess.run(
        [sys.executable, *args], check=False, cwd=tmp_path, capture_output=True, text=True, timeout=120
    )
    assert done.returncode != 0 and "trainer.num_nodes > 1 needs hydra.run.dir=DIR" in done.stderr + done.stdout
    assert not list(tmp_path.glob("outputs/**/checkpoints"))
