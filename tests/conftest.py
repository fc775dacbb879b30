"""Shared fixtures: a tiny generated Avito-like data set, a tiny BERT folder, and a runner for train.py."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from demandnet.data.synthetic import generate

ROOT = Path(__file__).resolve().parents[1]
# caches (frozen image features, encoded arrays) go to a fresh folder, never to the user's ~/.cache
os.environ["DEMANDNET_CACHE_DIR"] = tempfile.mkdtemp(prefix="demandnet-test-cache-")
REAL = ROOT.parent / "shared" / "data" / "avito-real"
# Small and fast: one epoch of a tiny CNN at 32 px, no DataLoader workers.
FAST = ["trainer.max_epochs=1", "data.num_workers=0", "data.batch_size=32", "data.eval_batch_size=64",
        "trainer.log_every_n_steps=1"]  # fmt: skip
FAST_IMAGE = "model.image.img_size=32"  # only when the image branch is on


@pytest.fixture(scope="session")
def tiny_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("tiny") / "avito"
    generate(root, n_train=240, n_test=50, seed=3)
    return root


@pytest.fixture(scope="session")
def tiny_bert(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from tests.tiny_bert import make_tiny_bert

    return make_tiny_bert(tmp_path_factory.mktemp("bert") / "tiny-bert")


def run_cli(args: list[str], cwd: Path = ROOT, timeout: int = 600) -> subprocess.CompletedProcess:
    """Run a demandnet command as a user would; fail the test with its output when it fails."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "HYDRA_FULL_ERROR": "1"}
    done = subprocess.run(
        [sys.executable, *args], check=False, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout
    )
    if done.returncode != 0:
        pytest.fail(f"{' '.join(args)} exited {done.returncode}\n{done.stdout[-3000:]}\n{done.stderr[-6000:]}")
    return done


def train(run_dir: Path, *overrides: str, data: Path | None = None) -> subprocess.CompletedProcess:
    data_args = ["data=avito", f"data.root={data}"] if data is not None else []
    fast = FAST if "model/image=none" in overrides else [*FAST, FAST_IMAGE]
    return run_cli([str(ROOT / "train.py"), f"hydra.run.dir={run_dir}", *data_args, *fast, *overrides])
