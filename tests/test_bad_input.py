"""The bad-input matrix, end to end: one file holding every kind of bad photo, text and table value trains and
predicts through the real commands; every row gets exactly one finite prediction and each fallback is logged."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from demandnet.data.datamodule import DemandDataModule
from demandnet.data.images import resolve_image_config
from tests.conftest import run_cli, train
from tests.photos import bomb, photo, save, truncated

pytestmark = pytest.mark.slow

# name -> (how to write <name>.jpg into the photo folder, whether it is a usable photo)
PHOTOS = {
    "zero-bytes": (lambda d, n: (d / f"{n}.jpg").write_bytes(b""), False),
    "truncated": (lambda d, n: truncated(d, n), False),
    "truncated-progressive": (lambda d, n: truncated(d, n, progressive=True), False),
    "html": (lambda d, n: (d / f"{n}.jpg").write_text("<html><body>404 Not Found</body></html>"), False),
    "text": (lambda d, n: (d / f"{n}.jpg").write_text("just some text\n"), False),
    "bomb": (lambda d, n: bomb(d, n), False),
    "flat": (lambda d, n: save(d, n, np.full((360, 480, 3), 128, np.uint8)), False),
    "png": (lambda d, n: save(d, n, fmt="PNG"), True),
    "webp": (lambda d, n: save(d, n, fmt="WEBP"), True),
    "mode-L": (lambda d, n: save(d, n, mode="L"), True),
    "mode-LA": (lambda d, n: save(d, n, fmt="PNG", mode="LA"), True),
    "mode-P-transparent": (lambda d, n: save(d, n, fmt="PNG", mode="P-transparent"), True),
    "mode-RGBA": (lambda d, n: save(d, n, fmt="PNG", mode="RGBA"), True),
    "mode-CMYK": (lambda d, n: save(d, n, mode="CMYK"), True),
    "mode-16bit": (lambda d, n: save(d, n, fmt="PNG", mode="I;16"), True),
    "mode-1bit": (lambda d, n: save(d, n, fmt="PNG", mode="1"), True),
    "large": (lambda d, n: save(d, n, np.tile(photo(), (6, 6, 1))), True),  # 2880x2160, within the pixel limit
}
NAMES_NEVER_OPENED = ["../outside", "/etc/passwd", "sub/dir", "not-there"]
TEXTS = ["", "   ", None, "!!! ... ???", "😀🔥👍", "1234567890", "платье " * 4300, "iPhone 5S в идеальном сост",
         "цена\u00a0договорная", "строка один\nстрока два, \"в кавычках\""]  # fmt: skip
PRICES = [np.nan, 0.0, -5.0, np.inf, 1e30]
SEQ = [np.nan, 0.0, -1.0, 1e20]
DATES = ["not a date", "", "2017-13-45"]


def _bad_frame(clean: pd.DataFrame) -> pd.DataFrame:
    """The clean rows with every bad value spread over them (each row several kinds at once)."""
    frame = clean.copy()
    n = len(frame)
    names = [*PHOTOS, *NAMES_NEVER_OPENED, ""]
    frame.loc[: len(names) - 1, "image"] = names
    for column in ("title", "description"):
        frame[column] = frame[column].astype(object)
        frame.loc[: len(TEXTS) - 1, column] = TEXTS
    frame.loc[n - len(PRICES) :, "price"] = PRICES
    frame.loc[n - len(SEQ) :, "item_seq_number"] = SEQ
    frame.loc[n - len(DATES) :, "activation_date"] = DATES
    frame.loc[:3, "city"] = "Город, которого нет"
    frame.loc[:2, "category_name"] = "Категория, которой нет"
    frame["extra column"] = "ignored"
    return frame


@pytest.fixture(scope="module")
def bad_data(tiny_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("bad")
    shutil.copytree(tiny_data / "images", root / "images")
    (root / "outside.jpg").write_bytes(save(root, "outside-photo").read_bytes())  # a real photo beside the folder
    for name, (write, _) in PHOTOS.items():
        write(root / "images", name)
    for split in ("train", "test"):
        clean = pd.read_csv(tiny_data / f"{split}.csv", dtype=object, keep_default_na=False)
        _bad_frame(clean).to_csv(root / f"{split}.csv", index=False)
    return root


def test_every_kind_of_bad_photo_gets_the_documented_fallback(bad_data):
    datamodule = DemandDataModule(
        root=str(bad_data), num_workers=0, image_config=resolve_image_config("test_resnet", 32)
    )
    datamodule.setup("fit")
    dataset = datamodule.encode_for_prediction(bad_data / "test.csv")
    got = {str(dataset.images[i]): bool(dataset[i]["has_image"]) for i in range(len(PHOTOS) + 5)}
    assert got == {**{name: usable for name, (_, usable) in PHOTOS.items()},
                   **dict.fromkeys([*NAMES_NEVER_OPENED, ""], False)}  # fmt: skip
    assert dataset.pipeline.bad_count == sum(not usable for _, usable in PHOTOS.values()) + len(NAMES_NEVER_OPENED)


def test_bad_rows_train_and_predict_end_to_end_one_finite_prediction_each(bad_data, tmp_path):
    run = tmp_path / "run"
    done = train(run, data=bad_data)
    log = done.stdout + done.stderr
    for name in ("zero-bytes", "truncated-progressive", "html", "bomb", "flat", "not-there"):
        assert f"{name}.jpg" in log  # each bad photo is named in the log, with its item_id
    assert "nothing was opened" in log  # the unsafe names
    unusable = sum(not usable for _, usable in PHOTOS.values())  # on disk but corrupt, flat or too large
    counted = json.loads((run / "metrics.json").read_text())["unusable_photos"]
    assert counted["predict"] == unusable and counted["train"] + counted["validation"] == unusable
    assert f"{unusable} of " in log and "could not be used" in log
    listed = pd.read_csv(run / "bad_photos.tsv", sep="\t", names=["item_id", "file", "reason"], dtype=str)
    bad_names = [name for name, (_, usable) in PHOTOS.items() if not usable] + NAMES_NEVER_OPENED
    assert all(listed.file.str.contains(name, regex=False).any() for name in bad_names)  # every one, by file
    item_ids = {
        *pd.read_csv(bad_data / "train.csv", dtype=str).item_id,
        *pd.read_csv(bad_data / "test.csv", dtype=str).item_id,
    }
    assert set(listed.item_id) <= item_ids
    test = pd.read_csv(bad_data / "test.csv", dtype=str, keep_default_na=False)
    for output in (run / "submission.csv", tmp_path / "predicted.csv"):
        if output.name == "predicted.csv":
            run_cli(["-m", "demandnet.predict", f"ckpt_path={run / 'checkpoints/best.ckpt'}",
                     f"input_csv={bad_data / 'test.csv'}", f"output_csv={output}",
                     f"image_dir={bad_data / 'images'}"])  # fmt: skip
        predicted = pd.read_csv(output, dtype={"item_id": str})
        assert predicted.item_id.tolist() == test.item_id.tolist()
        assert np.isfinite(predicted.deal_probability).all() and predicted.deal_probability.between(0, 1).all()
