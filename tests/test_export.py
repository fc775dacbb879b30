"""Export for serving: the exported graph equals the checkpoint's predictions (ONNX in onnxruntime, TorchScript)."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

from demandnet import batch as keys
from demandnet.export import ExportConfig, preprocessing_path
from demandnet.export import main as export_main
from demandnet.export import run as export
from demandnet.models.regressor import DemandRegressor
from demandnet.serving import ExportedModel
from demandnet.serving import main as serve
from demandnet.serving_model import ExportError, PaddedBiGRU, ServingModel
from tests.conftest import run_cli, train

TABULAR = {"_target_": "demandnet.models.tabular.TabularBranch", "hidden_size": 16}
DIMS = {"tabular": {"cardinalities": [5, 3], "num_numeric": 4},
        "text": {"vocab_size": 30, "fields": ["title", "description"], "embedding_dim": 8}}  # fmt: skip


def _ids(b: int, length: int) -> torch.Tensor:
    """Right-padded token ids of random lengths 0..length (row 0 empty, row 1 full)."""
    lengths = torch.randint(0, length + 1, (b,))
    lengths[0], lengths[1] = 0, length
    ids = torch.randint(1, 30, (b, length))
    return ids.masked_fill(torch.arange(length) >= lengths.unsqueeze(1), 0)


def test_padded_bigru_equals_the_packed_gru_on_every_real_step():
    torch.manual_seed(0)
    gru = nn.GRU(5, 7, batch_first=True, bidirectional=True)
    x, lengths = torch.randn(6, 9, 5), torch.tensor([1, 9, 4, 2, 7, 3])
    packed = nn.utils.rnn.pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)
    expected, _ = nn.utils.rnn.pad_packed_sequence(gru(packed)[0], batch_first=True, total_length=9)
    got = PaddedBiGRU(gru)(x, lengths)
    real = torch.arange(9) < lengths.unsqueeze(1)
    assert torch.allclose(got[real], expected[real], atol=1e-6)


@pytest.mark.parametrize("encoder", ["gru", "pool"])
def test_serving_model_equals_the_model_and_traces_with_any_batch_size(encoder):
    torch.manual_seed(0)
    text = {"_target_": "demandnet.models.text.NavecTextBranch", "hidden_size": 6, "encoder": encoder}
    model = DemandRegressor(branches={"text": text, "tabular": TABULAR}, dims=DIMS).eval()
    serving = ServingModel(model)
    assert serving.input_names == ["title_ids", "description_ids", keys.CATEGORICAL, keys.NUMERIC]

    def batch(b):
        return {"title_ids": _ids(b, 5), "description_ids": _ids(b, 11), keys.NUMERIC: torch.randn(b, 4),
                keys.CATEGORICAL: torch.stack([torch.randint(0, 5, (b,)), torch.randint(0, 3, (b,))], 1)}  # fmt: skip

    example = batch(4)
    traced = torch.jit.trace(serving, tuple(example[k] for k in serving.input_names), check_trace=False)
    for b in (1, 2, 9):  # other batch sizes than the traced one, each with an empty and a full text
        rows = batch(max(b, 2))
        rows = {k: v[:b] for k, v in rows.items()}
        with torch.no_grad():
            expected = torch.sigmoid(model(rows))
            assert torch.allclose(serving(*[rows[k] for k in serving.input_names]), expected, atol=1e-6)
            assert torch.allclose(traced(*[rows[k] for k in serving.input_names]), expected, atol=1e-6)


def test_a_branch_without_an_adapter_is_refused_by_name():
    model = DemandRegressor(branches={"tabular": TABULAR}, dims=DIMS)
    model.branches["mystery"] = nn.Identity()
    with pytest.raises(ExportError, match=r"branch 'mystery' \(torch.nn.modules.linear.Identity\) has no export"):
        ServingModel(model)


def test_export_refuses_an_unknown_format_and_a_missing_checkpoint(tmp_path):
    with pytest.raises(SystemExit, match="format must be one of"):
        export_main([f"ckpt_path={tmp_path / 'x.ckpt'}", "format=tflite"])
    with pytest.raises(SystemExit, match="checkpoint not found"):
        export_main([f"ckpt_path={tmp_path / 'x.ckpt'}"])
    assert not list(tmp_path.iterdir())


def _edge_rows(tiny_data, path):
    """The test file with rows that have no photo, a photo that is not on disk, empty and missing texts."""
    frame = pd.read_csv(tiny_data / "test.csv", dtype=str, keep_default_na=False)
    frame.loc[0:3, "image"] = ""
    frame.loc[4:6, "image"] = "no_such_photo"
    frame.loc[7:9, "title"] = ""
    frame.loc[7:11, "description"] = ""
    frame.to_csv(path, index=False)
    return frame


@pytest.mark.slow
@pytest.mark.parametrize("branches", ["image+navec+tabular", "image+tiny_bert+tabular"])
def test_exported_models_give_the_checkpoint_predictions(tiny_data, tiny_bert, tmp_path, branches):
    text = []
    if "tiny_bert" in branches:
        bert = tmp_path / "bert"
        shutil.copytree(tiny_bert, bert)
        text = ["model/text=transformer", f"model.text.name_or_path={bert}", "model.text.tokenizer.max_length=32"]
    run = tmp_path / "run"
    train(run, *text, data=tiny_data)
    if text:
        shutil.rmtree(bert)  # the exported model needs nothing but the checkpoint, like prediction
    ckpt = run / "checkpoints" / "best.ckpt"
    frame = _edge_rows(tiny_data, tmp_path / "edge.csv")
    images = str(tiny_data / "images")
    run_cli(["-m", "demandnet.predict", f"ckpt_path={ckpt}", f"input_csv={tmp_path / 'edge.csv'}",
             f"output_csv={tmp_path / 'ckpt.csv'}", f"image_dir={images}"])  # fmt: skip
    expected = pd.read_csv(tmp_path / "ckpt.csv").deal_probability.to_numpy()

    onnx_path, state_path = export(ExportConfig(ckpt_path=str(ckpt), format="onnx"))
    script_path, _ = export(ExportConfig(ckpt_path=str(ckpt), format="torchscript"))
    assert (onnx_path, script_path) == (run / "checkpoints/best.onnx", run / "checkpoints/best.torchscript.pt")
    assert state_path == preprocessing_path(script_path) == run / "checkpoints/best.preprocessing.json"
    state = json.loads(state_path.read_text())
    assert state["datamodule"] == torch.load(ckpt, weights_only=True)["DemandDataModule"]

    for path in (onnx_path, script_path):
        model = ExportedModel(path)
        got = model.predict_csv(tmp_path / "edge.csv", image_dir=images, batch_size=7)  # 50 rows: last batch of 1
        assert len(got) == len(frame) and np.abs(got - expected).max() <= 1e-4, path.name
        assert ((got >= 0) & (got <= 1)).all()
    first = next(model.batches(model.encode_csv(tmp_path / "edge.csv", images), batch_size=12))
    assert not first[keys.HAS_IMAGE][:7].any() and first[keys.HAS_IMAGE][7:].all()  # the edge rows are there
    serve([f"model={onnx_path}", f"input_csv={tmp_path / 'edge.csv'}", f"output_csv={tmp_path / 'onnx.csv'}",
           f"image_dir={images}"])  # fmt: skip
    served = pd.read_csv(tmp_path / "onnx.csv")
    assert served.item_id.tolist() == frame.item_id.tolist()
    assert np.abs(served.deal_probability.to_numpy() - expected).max() <= 1e-4


def test_each_exported_model_name_gets_its_own_preprocessing_file(tmp_path) -> None:
    assert preprocessing_path(tmp_path / "best.onnx") == tmp_path / "best.preprocessing.json"
    assert preprocessing_path(tmp_path / "best.torchscript.pt") == tmp_path / "best.preprocessing.json"
    assert preprocessing_path(tmp_path / "model.v1.onnx") != preprocessing_path(tmp_path / "model.v2.onnx")
    assert preprocessing_path(tmp_path / "e=3-rmse=0.25.onnx") == tmp_path / "e=3-rmse=0.25.preprocessing.json"


def test_serving_refuses_a_checkpoint_with_a_pointer_to_export(tmp_path) -> None:
    from demandnet.serving import ExportedModel

    ckpt = tmp_path / "best.ckpt"
    ckpt.write_bytes(b"x")
    with pytest.raises(ValueError, match="demandnet.export"):
        ExportedModel(ckpt)
