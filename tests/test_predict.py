"""Prediction from a checkpoint: untrusted files are refused, arguments are checked, every row is predicted once."""

from __future__ import annotations

import os
import shlex
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import pytorch_lightning as pl
import torch

from demandnet.data.datamodule import DemandDataModule
from demandnet.models.regressor import DemandRegressor
from demandnet.predict import load_checkpoint, main, restore
from demandnet.predictions import predict_in_order

TABULAR = {"_target_": "demandnet.models.tabular.TabularBranch", "hidden_size": 16, "max_embedding_dim": 4}


def _trainer(**kwargs) -> pl.Trainer:
    return pl.Trainer(accelerator="cpu", devices=1, logger=False, enable_checkpointing=False,
                      enable_progress_bar=False, enable_model_summary=False, use_distributed_sampler=False,
                      **kwargs)  # fmt: skip


@pytest.fixture(scope="module")
def trained(tiny_data: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[DemandDataModule, Path]:
    """A table-only model trained for two steps on the tiny data, and its Lightning checkpoint."""
    pl.seed_everything(0)
    datamodule = DemandDataModule(root=str(tiny_data), num_workers=0, batch_size=32, eval_batch_size=16)
    datamodule.setup("fit")
    model = DemandRegressor(branches={"image": None, "text": None, "tabular": TABULAR}, dims=datamodule.model_dims())
    trainer = _trainer(max_steps=2, limit_val_batches=0)
    trainer.fit(model, datamodule=datamodule)
    path = tmp_path_factory.mktemp("ckpt") / "model.ckpt"
    trainer.save_checkpoint(path)
    return datamodule, path


# ---- load_checkpoint: nothing in the file is executed --------------------------------------------------------------
class _RunsCode:
    """Unpickling this runs a shell command (it writes the marker file)."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"echo pwned > {shlex.quote(str(self.marker))}",)


def test_a_file_that_needs_arbitrary_unpickling_is_refused_and_nothing_runs(tmp_path):
    marker = tmp_path / "marker.txt"
    evil = tmp_path / "evil.ckpt"
    torch.save({"state_dict": {}, "hyper_parameters": _RunsCode(marker)}, evil)
    with pytest.raises(ValueError, match=r"refused, it does not load with torch.load\(weights_only=True\)") as info:
        load_checkpoint(evil)
    assert str(evil) in str(info.value)
    assert not marker.exists()
    # The payload is live: a plain unpickling would have run it, so the refusal above is what kept it from running.
    torch.load(evil, weights_only=False)
    assert marker.is_file()


def test_a_missing_file_is_refused(tmp_path):
    with pytest.raises(FileNotFoundError, match="checkpoint not found: .*nothing.ckpt"):
        load_checkpoint(tmp_path / "nothing.ckpt")
    with pytest.raises(FileNotFoundError, match="checkpoint not found"):
        load_checkpoint(tmp_path)  # a folder is not a checkpoint file


@pytest.mark.parametrize(
    "content", [b"hello, this is not a checkpoint\n", b"not a checkpoint\n", b"", bytes(range(256))], ids=str
)
def test_a_file_that_is_not_a_torch_file_is_refused_clearly(tmp_path, content):
    path = tmp_path / "notes.ckpt"
    path.write_bytes(content)
    with pytest.raises(ValueError, match="not a PyTorch checkpoint file") as info:
        load_checkpoint(path)
    assert str(path) in str(info.value)


def test_a_truncated_checkpoint_is_refused_clearly(trained, tmp_path):
    _, checkpoint = trained
    path = tmp_path / "cut.ckpt"
    path.write_bytes(checkpoint.read_bytes()[:4096])
    with pytest.raises(ValueError, match="not a PyTorch checkpoint file"):
        load_checkpoint(path)


@pytest.mark.parametrize(
    "payload",
    [{"state_dict": {"w": torch.zeros(2)}}, {"hyper_parameters": {}, "DemandDataModule": None}, torch.zeros(3), [1]],
    ids=["weights-only", "no-state", "tensor", "list"],
)
def test_a_torch_file_that_is_not_a_demandnet_checkpoint_is_refused(tmp_path, payload):
    path = tmp_path / "other.pt"
    torch.save(payload, path)
    with pytest.raises(ValueError, match="not a demandnet checkpoint"):
        restore(load_checkpoint(path))


# ---- the command line ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("args", "missing"),
    [([], ["ckpt_path", "input_csv", "output_csv"]), (["input_csv=x.csv"], ["ckpt_path", "output_csv"])],
)
def test_main_names_the_missing_arguments(args, missing):
    with pytest.raises(SystemExit) as info:
        main(args)
    message = str(info.value.code)
    assert message.startswith(f"demandnet.predict: missing {', '.join(f'{k}=...' for k in missing)}\n")
    assert "python -m demandnet.predict ckpt_path=CKPT" in message  # the usage follows


def test_main_predicts_every_row_in_input_order(trained, tiny_data, tmp_path):
    _, checkpoint = trained
    other = pd.read_csv(tiny_data / "test.csv", dtype=str).iloc[::-1].head(23)  # another order, a partial batch
    other.loc[other.index[0], "city"] = "Город, которого нет"
    other.to_csv(tmp_path / "other.csv", index=False)
    output = tmp_path / "out" / "predicted.csv"
    main([f"ckpt_path={checkpoint}", f"input_csv={tmp_path / 'other.csv'}", f"output_csv={output}",
          "trainer.accelerator=cpu", "num_workers=0", "batch_size=8"])  # fmt: skip
    predicted = pd.read_csv(output, dtype={"item_id": str})
    assert predicted.columns.tolist() == ["item_id", "deal_probability"]
    assert predicted.item_id.tolist() == other.item_id.tolist()
    assert predicted.deal_probability.between(0, 1).all()

    # the same numbers as the model rebuilt from the checkpoint, applied directly
    restored, model = restore(load_checkpoint(checkpoint), num_workers=0)
    dataset = restored.encode_for_prediction(tmp_path / "other.csv")
    with torch.no_grad():
        direct = torch.sigmoid(model(dataset.__getitems__(range(len(dataset))))).numpy()
    assert np.allclose(predicted.deal_probability, direct, atol=2e-6)


# ---- predict_in_order ----------------------------------------------------------------------------------------------
@pytest.fixture()
def restored(trained, tiny_data) -> tuple[DemandDataModule, DemandRegressor]:
    _, checkpoint = trained
    datamodule, model = restore(load_checkpoint(checkpoint), num_workers=0, batch_size=16)
    datamodule.predict_set = datamodule.encode_for_prediction(tiny_data / "test.csv")
    return datamodule, model


def test_predict_in_order_matches_the_trained_model(trained, restored):
    original, _ = trained
    datamodule, model = restored
    values = predict_in_order(_trainer(), model, datamodule)
    assert values.shape == (len(original.test_set),) and values.dtype == np.float64
    with torch.no_grad():
        direct = torch.sigmoid(model(original.test_set.__getitems__(range(len(original.test_set))))).double()
    assert np.allclose(values, direct.numpy(), atol=1e-6)


@pytest.mark.parametrize("fault", ["drop", "repeat"])
def test_predict_in_order_refuses_incomplete_coverage(restored, monkeypatch, fault):
    datamodule, model = restored
    honest = model.predict_step

    def faulty(batch, batch_idx):
        out = honest(batch, batch_idx)
        if batch_idx != 1:
            return out
        if fault == "drop":  # one row of the second batch is lost
            return {k: v[:-1] for k, v in out.items()}
        return {k: torch.cat([v, v[:1]]) for k, v in out.items()}  # one row predicted twice

    monkeypatch.setattr(model, "predict_step", faulty)
    with pytest.raises(RuntimeError, match="refusing to write an incomplete result") as info:
        predict_in_order(_trainer(), model, datamodule)
    n = len(datamodule.predict_set)
    distinct, count = (n - 1, n - 1) if fault == "drop" else (n, n + 1)
    assert f"covered {distinct} distinct rows of {n} ({count} predictions)" in str(info.value)


def test_predict_in_order_checks_the_rows_of_the_predict_set(restored):
    datamodule, model = restored
    full = datamodule.predict_set
    keep = np.arange(0, len(full), 2)  # a subset: batch[INDEX] carries source positions, not 0..n-1
    datamodule.predict_set = type(full)(full.arrays, keep, full.item_ids)
    values = predict_in_order(_trainer(), model, datamodule)
    with torch.no_grad():
        direct = torch.sigmoid(model(full.__getitems__(keep))).double().numpy()
    assert np.allclose(values, direct, atol=1e-6)


def test_main_states_bad_input_in_one_line_and_strict_images_is_an_option(trained, tiny_data, tmp_path):
    _, checkpoint = trained
    (tmp_path / "bad.csv").write_text("item_id,title\n")
    with pytest.raises(SystemExit) as info:
        main([f"ckpt_path={checkpoint}", f"input_csv={tmp_path / 'bad.csv'}", f"output_csv={tmp_path / 'o.csv'}"])
    assert str(info.value.code).startswith("demandnet.predict: ") and "bad.csv" in str(info.value.code)
    main([f"ckpt_path={checkpoint}", f"input_csv={tiny_data / 'test.csv'}", f"output_csv={tmp_path / 'o.csv'}",
          "strict_images=true", "num_workers=0"])  # fmt: skip
    assert len(pd.read_csv(tmp_path / "o.csv")) == len(pd.read_csv(tiny_data / "test.csv"))


@pytest.mark.parametrize("launched_by", [{"LOCAL_RANK": "1"}, {"LOCAL_RANK": "0", "TORCHELASTIC_RUN_ID": "job"}])
def test_a_ddp_process_dies_with_its_launcher(tmp_path, launched_by):
    """A rank > 0 of Lightning's launcher, or any rank of torchrun's (its agent is every rank's parent), asks Linux
    for SIGKILL when its parent dies (a launcher killed with SIGKILL leaves no orphan)."""
    import subprocess
    import sys
    import time

    child = (
        "import os, time\n"
        "from demandnet.distributed import die_with_launcher\n"
        "die_with_launcher()\n"
        f"open({str(tmp_path / 'pid')!r}, 'w').write(str(os.getpid()))\n"
        "time.sleep(60)\n"
    )
    parent = f"import subprocess, sys, time\nsubprocess.Popen([sys.executable, '-c', {child!r}])\ntime.sleep(60)\n"
    launcher = subprocess.Popen([sys.executable, "-c", parent], env={**os.environ, **launched_by})
    for _ in range(200):
        if (tmp_path / "pid").exists() and (tmp_path / "pid").read_text():
            break
        time.sleep(0.05)
    pid = int((tmp_path / "pid").read_text())
    launcher.kill()
    launcher.wait()
    for _ in range(100):
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.05)
    os.kill(pid, 9)
    pytest.fail("the rank outlived its killed launcher")
