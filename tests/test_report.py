"""The run report: RMSE tables against a hand computation, the ablation transforms, missing pieces, and a tiny run."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from demandnet import batch as keys
from demandnet.data import schema
from demandnet.data.datamodule import DemandDataModule
from demandnet.data.hf_tokenizer import HFTokenizer
from demandnet.data.images import resolve_image_config
from demandnet.data.tabular import NUMERIC_FEATURES, TabularPreprocessor
from demandnet.data.text import NavecTokenizer
from demandnet.models.regressor import DemandRegressor
from demandnet.report.__main__ import main as report_main
from demandnet.report.ablation import WithoutText, ablations, without_image, without_tabular
from demandnet.report.build import NotARunDir, build_report
from demandnet.report.tables import epoch_curves, rmse_by_bucket, rmse_by_category
from tests.conftest import train

IMAGE = {"_target_": "demandnet.models.image.ImageBranch", "name": "lcnet_050", "img_size": 32}
TEXT = {"_target_": "demandnet.models.text.NavecTextBranch", "hidden_size": 8, "dropout": 0.0}
TABULAR = {"_target_": "demandnet.models.tabular.TabularBranch", "hidden_size": 16, "dropout": 0.0}
PNGS = {"learning_curves.png", "predicted_vs_actual.png", "rmse_by_bucket.png", "rmse_by_category.png", "ablation.png"}


def _frame() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "target": [0.0, 0.0, 0.5, 1.0, 0.25],
            "prediction": [0.1, 0.3, 0.4, 0.6, 0.25],
            "parent_category_name": ["A", "A", "B", "B", "B"],
        }
    )


def test_rmse_by_bucket_matches_a_hand_computation():
    table = rmse_by_bucket(_frame()).set_index("group")
    assert list(table.index) == ["exactly 0", "between", "exactly 1"]
    assert list(table["rows"]) == [2, 2, 1]
    # squared errors: 0.01, 0.09 | 0.01, 0 | 0.16
    assert table["rmse"].tolist() == pytest.approx([math.sqrt(0.05), math.sqrt(0.005), 0.4])
    assert table.loc["exactly 0", "mean_prediction"] == pytest.approx(0.2)
    empty = rmse_by_bucket(_frame().drop(index=3)).set_index("group")
    assert empty.loc["exactly 1", "rows"] == 0 and np.isnan(empty.loc["exactly 1", "rmse"])


def test_rmse_by_category_matches_a_hand_computation():
    table = rmse_by_category(_frame())
    assert list(table["group"]) == ["B", "A"]  # most rows first
    assert list(table["rows"]) == [3, 2]
    assert table["rmse"].tolist() == pytest.approx([math.sqrt((0.01 + 0.16 + 0.0) / 3), math.sqrt(0.05)])
    assert table["mean_target"].tolist() == pytest.approx([0.5833333, 0.0])


def test_epoch_curves_skip_the_final_validation_and_keep_a_resumed_epochs_last_values(tmp_path):
    csv = tmp_path / "metrics.csv"
    csv.write_text(
        "epoch,step,train/loss_epoch,train/loss_step,val/loss,val/rmse\n"
        "0,0,,0.3,,\n0,1,,,0.20,0.45\n0,1,0.25,,,\n"
        "1,2,,0.2,,\n1,3,,,0.19,0.44\n"  # killed here; the resume logs epoch 1 again
        "1,2,,0.21,,\n1,3,,,0.18,0.43\n1,3,0.2,,,\n"
        "2,4,,,0.18,0.43\n"  # trainer.validate of the best checkpoint after fit
    )
    curves = epoch_curves(csv)
    assert list(curves.index) == [1, 2]
    assert curves["val_rmse"].tolist() == [0.45, 0.43]
    assert curves["train_loss"].tolist() == [0.25, 0.2]


@pytest.fixture(scope="module")
def photos(tiny_data: Path) -> DemandDataModule:
    datamodule = DemandDataModule(root=str(tiny_data), num_workers=0, eval_batch_size=64, val_fraction=0.2,
                                  text_tokenizer=NavecTokenizer(), image_config=resolve_image_config("lcnet_050", 32))  # fmt: skip
    datamodule.setup("fit")
    return datamodule


def _val_batch(datamodule: DemandDataModule) -> dict[str, torch.Tensor]:
    return next(iter(datamodule.val_dataloader()))


def _model(datamodule: DemandDataModule, **branches) -> DemandRegressor:
    torch.manual_seed(0)
    return DemandRegressor(branches=branches, dims=datamodule.model_dims()).eval()


def test_image_ablation_is_a_batch_whose_photos_are_all_missing(photos, tiny_data, tmp_path):
    no_photos = DemandDataModule(root=str(tiny_data), num_workers=0, eval_batch_size=64, val_fraction=0.2,
                                 text_tokenizer=NavecTokenizer(), image_dir=str(tmp_path),
                                 image_config=resolve_image_config("lcnet_050", 32))  # fmt: skip
    no_photos.setup("fit")
    batch, missing = _val_batch(photos), _val_batch(no_photos)
    assert batch[keys.HAS_IMAGE].sum() > 0 and missing[keys.HAS_IMAGE].sum() == 0
    ablated = without_image(batch)
    assert (ablated[keys.HAS_IMAGE] == 0).all() and batch[keys.HAS_IMAGE].sum() > 0  # the input is not changed
    assert ablated.keys() == missing.keys()
    for key in missing:
        assert torch.equal(ablated[key], missing[key]), key
    model = _model(photos, image=IMAGE, tabular=TABULAR)
    with torch.no_grad():
        assert torch.equal(model(ablated), model(missing))
        assert not torch.allclose(model(ablated), model(batch))


def test_text_ablation_gives_the_navec_branch_empty_texts(photos):
    batch = _val_batch(photos)
    ablated = WithoutText(photos.text_tokenizer)(batch)
    for field in ("title", "description"):
        assert batch[keys.field_ids(field)].any() and not ablated[keys.field_ids(field)].any()  # all padding
    assert torch.equal(ablated[keys.CATEGORICAL], batch[keys.CATEGORICAL])
    branch = _model(photos, text=TEXT, tabular=TABULAR).branches["text"]
    with torch.no_grad():
        out = branch(ablated)
    assert torch.allclose(out, out[:1].expand_as(out))  # every row sees the same (empty) text


def test_text_ablation_gives_a_transformer_the_encoding_of_an_empty_pair(tiny_bert):
    tokenizer = HFTokenizer(str(tiny_bert), max_length=16).fit()
    texts = pd.DataFrame({"title": ["продам платье", "дом"], "description": ["новый", None]})
    batch = {k: torch.as_tensor(v).long() for k, v in tokenizer.transform(texts).items()}
    ablated = WithoutText(tokenizer)(batch)
    empty = tokenizer.transform(pd.DataFrame({"title": [""], "description": [""]}))
    for key in (keys.TEXT_IDS, keys.TEXT_MASK):
        assert torch.equal(ablated[key], torch.as_tensor(empty[key]).long().expand(2, -1))
    assert int(ablated[keys.TEXT_MASK][0].sum()) == 3 < int(batch[keys.TEXT_MASK][0].sum())  # [CLS] [SEP] [SEP]


def test_tabular_ablation_is_unknown_categories_and_missing_numbers(photos, tiny_data):
    batch = _val_batch(photos)
    ablated = without_tabular(batch)
    assert not ablated[keys.CATEGORICAL].any() and not ablated[keys.NUMERIC].any()
    assert torch.equal(ablated[keys.HAS_IMAGE], batch[keys.HAS_IMAGE])
    # 0 is what the preprocessing gives an unseen category and a missing number
    frame = schema.read_table(tiny_data / "train.csv", require_target=True)
    odd = frame.iloc[:1].copy()
    odd["price"], odd["category_name"] = np.nan, "never seen in training"
    table = TabularPreprocessor().fit(frame).transform(odd)
    assert table["categorical"][0, photos.tabular.columns.index("category_name")] == 0
    assert table["numeric"][0, NUMERIC_FEATURES.index("log_price")] == pytest.approx(0.0, abs=1e-6)
    assert list(ablations(photos, ["text", "tabular"])) == ["text", "tabular"]  # only the branches that are on


def test_missing_pieces_give_notes_and_a_folder_that_is_no_run_dir_an_error(tmp_path, capsys):
    run = tmp_path / "run"
    (run / ".hydra").mkdir(parents=True)
    (run / ".hydra" / "config.yaml").write_text("seed: 7\n")
    (run / "metrics.json").write_text(json.dumps({"val_rmse": 0.3125}))
    (run / "csv").mkdir()
    (run / "csv" / "metrics.csv").write_text("epoch,step,train/loss_epoch,val/rmse\n0,3,,0.31\n0,3,0.2,\n")
    page = build_report(run).read_text()
    assert "0.3125" in page and "seed: 7" in page
    for why in ("fewer than two validated epochs", "no val_predictions.csv", "no ablation.json"):
        assert why in page
    assert not list((run / "report").glob("*.png"))
    assert report_main([str(tmp_path / "empty")]) == 2 and "is not a folder" in capsys.readouterr().err
    with pytest.raises(NotARunDir, match="not a demandnet run directory"):
        build_report(tmp_path)


@pytest.mark.slow
def test_a_tiny_run_writes_the_report_and_the_cli_rebuilds_it(tiny_data, tmp_path):
    run = tmp_path / "run"
    train(run, "trainer.max_epochs=2", data=tiny_data)
    report = run / "report"
    files = {p.name: p.read_bytes() for p in report.iterdir()}
    assert PNGS | {"report.html", "ablation.json"} == set(files)
    for name in PNGS:
        assert files[name][:8] == b"\x89PNG\r\n\x1a\n" and len(files[name]) > 1000
    metrics = json.loads((run / "metrics.json").read_text())
    page = files["report.html"].decode()
    assert all(f'src="{name}"' in page for name in PNGS) and f"{metrics['val_rmse']:.4f}" in page
    predictions = pd.read_csv(run / "val_predictions.csv")
    assert len(predictions) == metrics["n_val"] == predictions["item_id"].nunique()
    rmse = float(np.sqrt(np.mean((predictions["prediction"] - predictions["target"]) ** 2)))
    assert rmse == pytest.approx(metrics["val_rmse"], abs=1e-5)  # the best checkpoint, as validated
    ablation = json.loads(files["ablation.json"])
    assert list(ablation["branches"]) == ["image", "text", "tabular"]
    assert ablation["val_rmse"] == pytest.approx(metrics["val_rmse"], abs=1e-5)
    assert all(b["val_rmse"] != ablation["val_rmse"] for b in ablation["branches"].values())
    shutil.rmtree(report)
    assert report_main([str(run)]) == 0
    assert {p.name: p.read_bytes() for p in report.iterdir()} == files
