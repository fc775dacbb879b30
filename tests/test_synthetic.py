"""The synthetic Avito-like data set: schema, realistic shapes (docs/avito-facts.md), photos, determinism, the known
noise floor and per-modality signal, ensure_synthetic's reuse/atomicity, no copied real texts, argument checks.

Two data sets are generated once per module: a photo set (2,000 rows with photos) and a bigger CSV-only set
(20,000 rows, no photos: fast) for the distribution checks, whose tolerances are about 5 standard errors.
"""

from __future__ import annotations

import hashlib
import json
import re
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from demandnet.data import synthetic
from demandnet.data.schema import read_table
from demandnet.data.synthetic import CHUNK_ROWS, ensure_synthetic, generate
from demandnet.data.synthetic_table import draw_rows
from demandnet.data.synthetic_target import COMPONENTS, expected, latents, outcome_model
from demandnet.data.synthetic_text import render_texts
from demandnet.data.synthetic_world import get_world, load_vocab

REAL = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "avito-real"
# The 18 columns of Kaggle's train.csv in their order (avito-facts.md section 2); test.csv lacks the last one.
TRAIN_COLUMNS = [
    "item_id", "user_id", "region", "city", "parent_category_name", "category_name", "param_1", "param_2", "param_3",
    "title", "description", "price", "item_seq_number", "activation_date", "user_type", "image", "image_top_1",
    "deal_probability",
]  # fmt: skip
TEST_COLUMNS = TRAIN_COLUMNS[:-1]
PHOTO = {"n_train": 1600, "n_test": 400, "seed": 0}
STATS = {"n_train": 16000, "n_test": 4000, "seed": 1}


def _read(root: Path) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    return (pd.read_csv(root / "train.csv"), pd.read_csv(root / "test.csv"), pd.read_csv(root / "expected.csv"))


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _siblings(root: Path) -> list[str]:
    """Temporary or replaced directories that ensure_synthetic leaves next to root (there must be none)."""
    return sorted(
        p.name for p in root.parent.iterdir() if p.name.startswith((f".{root.name}.tmp-", f".{root.name}.old-"))
    )


@pytest.fixture(scope="module")
def photo_set(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("synthetic") / "photos"
    generate(root, **PHOTO)
    return root


@pytest.fixture(scope="module")
def photo_frames(photo_set: Path) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    return _read(photo_set)


@pytest.fixture(scope="module")
def stats_set(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("synthetic") / "stats"
    generate(root, **STATS, with_images=False)
    return root


@pytest.fixture(scope="module")
def stats(stats_set: Path) -> dict[str, pd.DataFrame]:
    train, test, exp = _read(stats_set)
    both = pd.concat([train, test], ignore_index=True).merge(exp, on="item_id", how="left", validate="one_to_one")
    return {"train": train, "test": test, "expected": exp, "all": both}


@pytest.fixture(scope="module")
def photo_stats(photo_set: Path, photo_frames: tuple) -> pd.DataFrame:
    """One row per photo: its row's expected target and pixel statistics; every file fully decoded once."""
    train, test, exp = photo_frames
    rows = pd.concat([train, test], ignore_index=True).merge(exp, on="item_id", validate="one_to_one")
    rows = rows[rows["image"].notna()]
    out = []
    for name in rows["image"]:
        with Image.open(photo_set / "images" / f"{name}.jpg") as img:
            fmt, size, mode = img.format, img.size, img.mode
            img.draft("L", (size[0] // 4, size[1] // 4))  # decodes the whole stream at 1/4 scale (fast)
            grey = np.asarray(img.convert("L"), dtype=np.float64)
        out.append(
            {"format": fmt, "w": size[0], "h": size[1], "mode": mode, "mean": grey.mean(), "contrast": grey.std()}
        )
    return pd.concat([rows.reset_index(drop=True), pd.DataFrame(out)], axis=1)


# ---------------------------------------------------------------------------------------------------- 1. schema


def test_columns_are_the_kaggle_columns_in_order(photo_set: Path, photo_frames: tuple) -> None:
    train, test, exp = photo_frames
    assert list(train.columns) == TRAIN_COLUMNS
    assert list(test.columns) == TEST_COLUMNS
    assert list(exp.columns) == ["item_id", "expected_deal_probability"]
    assert (len(train), len(test)) == (PHOTO["n_train"], PHOTO["n_test"])
    # the raw header line, as a Kaggle reader would see it
    assert (photo_set / "train.csv").read_text(encoding="utf-8").split("\n", 1)[0] == ",".join(TRAIN_COLUMNS)
    assert (photo_set / "test.csv").read_text(encoding="utf-8").split("\n", 1)[0] == ",".join(TEST_COLUMNS)


@pytest.mark.skipif(not (REAL / "train.csv").is_file(), reason="no real excerpt in ../shared/data/avito-real")
def test_header_matches_the_real_files(photo_set: Path) -> None:
    for name in ("train.csv", "test.csv"):
        real = pd.read_csv(REAL / name, nrows=1).columns.tolist()
        assert pd.read_csv(photo_set / name, nrows=1).columns.tolist() == real


def test_dtypes_after_a_plain_read_csv(stats: dict) -> None:
    train, test = stats["train"], stats["test"]
    for frame in (train, test):
        assert pd.api.types.is_float_dtype(frame["price"])
        assert pd.api.types.is_integer_dtype(frame["item_seq_number"])
        assert pd.api.types.is_float_dtype(frame["image_top_1"])
        for column in ("item_id", "user_id", "region", "city", "category_name", "title", "user_type", "image"):
            assert pd.api.types.is_string_dtype(frame[column]) or pd.api.types.is_object_dtype(frame[column]), column
        dates = pd.to_datetime(frame["activation_date"], format="%Y-%m-%d", errors="coerce")
        assert dates.notna().all()
        assert frame["item_id"].str.fullmatch(r"[0-9a-f]{12}").all()
        assert frame["user_id"].str.fullmatch(r"[0-9a-f]{12}").all()
        assert frame["image"].dropna().str.fullmatch(r"[0-9a-f]{64}").all()
        assert (frame["item_seq_number"] >= 1).all()
        codes = frame["image_top_1"].dropna()
        assert ((codes >= 0) & (codes <= 3066) & (codes == codes.round())).all()
    assert pd.api.types.is_float_dtype(train["deal_probability"])
    assert "deal_probability" not in test.columns


def test_ids_unique_across_train_and_test_and_expected_covers_both(stats: dict, photo_frames: tuple) -> None:
    for train, test, exp in (photo_frames, (stats["train"], stats["test"], stats["expected"])):
        ids = pd.concat([train["item_id"], test["item_id"]], ignore_index=True)
        assert ids.is_unique
        assert exp["item_id"].tolist() == ids.tolist()  # train rows first, then test rows, in file order
        images = pd.concat([train["image"], test["image"]]).dropna()
        assert images.is_unique


def test_generated_files_pass_demandnet_validation(photo_set: Path) -> None:
    train = read_table(photo_set / "train.csv", require_target=True)
    test = read_table(photo_set / "test.csv")
    assert (len(train), len(test)) == (PHOTO["n_train"], PHOTO["n_test"])


def test_manifest_describes_the_set(photo_set: Path, stats_set: Path, photo_frames: tuple) -> None:
    manifest = json.loads((photo_set / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["params"] == {**PHOTO, "with_images": True}
    assert manifest["rows"] == {"train": PHOTO["n_train"], "test": PHOTO["n_test"]}
    n_photos = sum(frame["image"].notna().sum() for frame in photo_frames[:2])
    assert manifest["images"] == n_photos == len(list((photo_set / "images").iterdir()))
    manifest = json.loads((stats_set / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["params"]["with_images"] is False and manifest["images"] == 0


# ------------------------------------------------------------------------------------- 2. shapes (avito-facts.md)


def test_missing_shares_match_the_real_data(stats: dict) -> None:
    train, test = stats["train"], stats["test"]
    # image and image_top_1 are missing on exactly the same rows (avito-facts 4)
    for frame in (train, test):
        assert (frame["image"].isna() == frame["image_top_1"].isna()).all()
    assert 0.065 < train["image"].isna().mean() < 0.085  # real 7.49 %
    assert 0.047 < train["price"].isna().mean() < 0.067  # real 5.68 %
    assert 0.067 < train["description"].isna().mean() < 0.087  # real 7.73 %
    assert test["description"].notna().all()  # real: never missing in test
    assert 0.030 < train["param_1"].isna().mean() < 0.052  # real 4.10 %
    assert 0.40 < train["param_2"].isna().mean() < 0.47  # real 43.54 %
    assert 0.53 < train["param_3"].isna().mean() < 0.61  # real 57.37 %
    for column in ("item_id", "user_id", "region", "city", "parent_category_name", "category_name", "title",
                   "item_seq_number", "activation_date", "user_type"):  # fmt: skip
        assert train[column].notna().all() and test[column].notna().all(), column
    assert 0.001 < (train["price"] == 0).mean() < 0.006  # "отдам даром", real 0.3 %
    assert (train["price"].dropna() >= 0).all()


def test_param_2_and_3_are_structural(stats: dict) -> None:
    frame = pd.concat([stats["train"], stats["test"]], ignore_index=True)
    big = frame.groupby("category_name").filter(lambda g: len(g) >= 50)
    p2 = big.groupby("category_name")["param_2"].apply(lambda s: s.notna().mean())
    p3 = big.groupby("category_name")["param_3"].apply(lambda s: s.notna().mean())
    assert (p2 == 0).sum() >= 15 and (p3 == 0).sum() >= 15  # categories that never use them
    assert (p2 > 0.9).sum() >= 5 and (p3 > 0.9).sum() >= 3  # and categories that nearly always do
    # a category that never has param_2 in train has none in test either
    never = stats["train"].groupby("category_name")["param_2"].apply(lambda s: s.isna().all())
    in_test = stats["test"][stats["test"]["category_name"].isin(never[never].index)]
    assert in_test["param_2"].isna().all()


def test_hierarchies_are_consistent(stats: dict) -> None:
    frame = pd.concat([stats["train"], stats["test"]], ignore_index=True)
    assert (frame.groupby("category_name")["parent_category_name"].nunique() == 1).all()
    vocab = load_vocab()
    known = {(c["parent"], c["name"]) for c in vocab["categories"]}
    assert set(zip(frame["parent_category_name"], frame["category_name"])) <= known
    # a city lies in its region (a few names such as Березовский exist in two regions, as in the real data)
    places = {(r["name"], city) for r in vocab["regions"] for city in r["cities"]}
    assert set(zip(frame["region"], frame["city"])) <= places
    assert (frame.groupby("city")["region"].nunique() > 1).mean() < 0.05
    assert frame["parent_category_name"].nunique() == 9
    assert frame["region"].nunique() == 28


def test_categorical_shares(stats: dict) -> None:
    train = stats["train"]
    users = train["user_type"].value_counts(normalize=True)
    assert set(users.index) == {"Private", "Company", "Shop"}
    assert 0.66 < users["Private"] < 0.77  # real 71.55 %
    assert 0.03 < users["Shop"] < 0.08  # real 5.35 %
    parents = train["parent_category_name"].value_counts(normalize=True)
    assert parents.index[0] == "Личные вещи" and 0.42 < parents.iloc[0] < 0.51  # real 46.40 %
    assert train["region"].value_counts(normalize=True).iloc[0] < 0.13  # flat: top region about 9 %
    assert 700 < train["price"].median() < 2500  # real median 1,300 rubles


def test_dates(stats: dict) -> None:
    train = pd.to_datetime(stats["train"]["activation_date"])
    test = pd.to_datetime(stats["test"]["activation_date"])
    assert train.min() >= pd.Timestamp("2017-03-15") and train.max() <= pd.Timestamp("2017-04-07")
    assert (train <= pd.Timestamp("2017-03-28")).mean() > 0.995
    assert test.min() >= pd.Timestamp("2017-04-12") and test.max() <= pd.Timestamp("2017-04-20")
    assert test.min() > train.max()  # test comes strictly after train


def test_texts_have_avito_shapes(stats: dict) -> None:
    frame = pd.concat([stats["train"], stats["test"]], ignore_index=True)
    title, desc = frame["title"], frame["description"].dropna()
    assert title.notna().all() and (title.str.len() <= 50).all() and not title.str.contains("\n").any()
    assert 12 < title.str.len().mean() < 30  # real mean about 21-23 characters
    assert (desc.str.len() <= 3000).all()
    assert 70 < desc.str.len().median() < 150  # real median about 90-118
    assert 0.2 < desc.str.contains("\n").mean() < 0.45  # real 31 % multi-line


def test_target_distribution(stats: dict) -> None:
    y = stats["train"]["deal_probability"]
    assert y.notna().all() and y.between(0, 1).all()
    assert 0.62 < (y == 0).mean() < 0.68  # real 64.83 % exact zeros
    assert 0.002 < (y == 1).mean() < 0.012  # real 0.67 % exact ones
    assert 0.125 < y.mean() < 0.155  # real 0.139
    assert 0.24 < y.std() < 0.29  # real 0.260
    assert np.allclose(y * 1e5, np.round(y * 1e5), atol=1e-6)  # 5 decimals, like the competition's values
    # like the real values, the non-zero ones sit on a fixed per-category grid (about 18k values in all)
    world = get_world()
    index = {c["name"]: k for k, c in enumerate(world.categories)}
    inner = stats["train"][(y > 0) & (y < 1)]
    for name, values in inner.groupby("category_name")["deal_probability"]:
        grid = world.grids[index[name]]
        assert np.isin(np.round(values.to_numpy() * 1e5), np.round(grid * 1e5)).all(), name
    assert sum(len(g) for g in world.grids) < 25_000


# ----------------------------------------------------------------------------------------------------- 3. photos


def test_one_valid_jpeg_per_photo_and_none_for_the_rest(photo_set: Path, photo_frames: tuple, photo_stats) -> None:
    train, test, _ = photo_frames
    images = pd.concat([train["image"], test["image"]])
    files = {p.name for p in (photo_set / "images").iterdir()}
    assert files == {f"{name}.jpg" for name in images.dropna()}
    assert images.isna().sum() > 0  # rows without a photo exist and have no file
    assert len(photo_stats) == images.notna().sum()
    assert (photo_stats["format"] == "JPEG").all() and (photo_stats["mode"] == "RGB").all()
    long_side = photo_stats[["w", "h"]].max(axis=1)
    assert (long_side <= 480).all() and (photo_stats[["w", "h"]].min(axis=1) >= 200).all()
    assert (photo_stats["w"] != photo_stats["h"]).any() and (photo_stats["w"] == photo_stats["h"]).any()


def test_a_few_photos_decode_fully(photo_set: Path, photo_frames: tuple) -> None:
    names = photo_frames[0]["image"].dropna().head(5)
    for name in names:
        path = photo_set / "images" / f"{name}.jpg"
        with Image.open(path) as img:
            img.verify()
        with Image.open(path) as img:
            img.load()
            assert max(img.size) <= 480
        assert 2_000 < path.stat().st_size < 150_000


def test_without_images_no_photo_is_written(stats_set: Path, stats: dict) -> None:
    assert stats["train"]["image"].notna().any()  # the image column is still filled in
    assert not (stats_set / "images").exists() or not any((stats_set / "images").iterdir())
    assert not list(stats_set.rglob("*.jpg"))


# ------------------------------------------------------------------------------------------------ 4. determinism


def test_same_seed_and_sizes_give_identical_files(photo_set: Path, tmp_path: Path) -> None:
    again = tmp_path / "again"
    generate(again, **PHOTO)
    for name in ("train.csv", "test.csv", "expected.csv", "manifest.json"):
        assert (again / name).read_bytes() == (photo_set / name).read_bytes(), name
    first = {p.name: _digest(p) for p in (photo_set / "images").iterdir()}
    second = {p.name: _digest(p) for p in (again / "images").iterdir()}
    assert first == second
    # the CSVs do not depend on whether photos are written
    no_photos = tmp_path / "no_photos"
    generate(no_photos, **PHOTO, with_images=False)
    for name in ("train.csv", "test.csv", "expected.csv"):
        assert (no_photos / name).read_bytes() == (photo_set / name).read_bytes(), name


def test_a_different_seed_gives_different_data(tmp_path: Path, photo_frames: tuple) -> None:
    other = tmp_path / "other"
    generate(other, **{**PHOTO, "seed": PHOTO["seed"] + 1}, with_images=False)
    train, _, exp = _read(other)
    base_train, _, base_exp = photo_frames
    assert len(train) == len(base_train)
    assert len(set(train["item_id"]) & set(base_train["item_id"])) < 5
    assert train["title"].tolist() != base_train["title"].tolist()
    assert not np.array_equal(train["deal_probability"].to_numpy(), base_train["deal_probability"].to_numpy())
    assert not np.array_equal(
        exp["expected_deal_probability"].to_numpy(), base_exp["expected_deal_probability"].to_numpy()
    )


def test_numpy_integers_are_accepted_like_ints(tmp_path: Path) -> None:
    generate(tmp_path / "np", np.int64(30), np.int64(10), seed=np.int64(2), with_images=False)
    generate(tmp_path / "py", 30, 10, seed=2, with_images=False)
    for name in ("train.csv", "test.csv", "expected.csv", "manifest.json"):
        assert (tmp_path / "np" / name).read_bytes() == (tmp_path / "py" / name).read_bytes(), name


# ------------------------------------------------------------------------------- 5. noise floor and signal


def test_expected_is_the_noise_floor(stats: dict) -> None:
    train = stats["train"].merge(stats["expected"], on="item_id", validate="one_to_one")
    y, e = train["deal_probability"].to_numpy(), train["expected_deal_probability"].to_numpy()
    assert stats["expected"]["expected_deal_probability"].between(0, 1).all()
    rmse_floor = np.sqrt(np.mean((y - e) ** 2))
    rmse_mean = np.sqrt(np.mean((y - y.mean()) ** 2))
    assert rmse_floor < 0.95 * rmse_mean, (rmse_floor, rmse_mean)
    # expected is calibrated: E[y] matches overall and within deciles of expected
    assert abs(y.mean() - e.mean()) < 0.01
    decile = pd.qcut(e, 10, labels=False, duplicates="drop")
    by = pd.DataFrame({"y": y, "e": e, "d": decile}).groupby("d").mean()
    assert (by["y"] - by["e"]).abs().max() < 0.035, by
    assert by["e"].is_monotonic_increasing and by["e"].iloc[-1] - by["e"].iloc[0] > 0.3


def _recompute(n_train: int, n_test: int, seed: int) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """The latent components and the expected target of every row, rebuilt chunk by chunk as generate() does."""
    world = get_world()
    rows = draw_rows(world, n_train, n_test, seed)
    n = n_train + n_test
    parts: dict[str, list] = {k: [] for k in COMPONENTS}
    exp = []
    for chunk, a in enumerate(range(0, n, CHUNK_ROWS)):
        b = min(a + CHUNK_ROWS, n)
        texts = render_texts(world, rows, a, b, np.random.default_rng([seed, 2, chunk]))
        comp = latents(world, rows, texts, slice(a, b))
        exp.append(
            expected(outcome_model(world, sum(comp.values()), rows["category"][a:b], rows["price_missing"][a:b]))
        )
        for k in COMPONENTS:
            parts[k].append(comp[k])
    return {k: np.concatenate(v) for k, v in parts.items()}, np.concatenate(exp)


def test_every_modality_carries_signal_in_the_real_order(stats: dict) -> None:
    parts, exp = _recompute(**STATS)
    # expected.csv is exactly the documented function of the four latent components
    assert np.abs(exp - stats["expected"]["expected_deal_probability"].to_numpy()).max() < 1e-6
    var = {k: float(np.var(v)) for k, v in parts.items()}
    assert all(v > 0.02 for v in var.values()), var
    photo = float(np.var(parts["photo_quality"] + parts["photo_content"]))
    # the real competition's ordering of what each input explains: table > text > image
    assert var["table"] > 2 * var["text"] and var["text"] > 1.2 * photo > 0, (var, photo)


def test_expected_depends_on_category_and_user_type(stats: dict) -> None:
    frame = stats["all"]
    parent = frame.groupby("parent_category_name")["expected_deal_probability"].mean()
    assert parent["Услуги"] > 0.3 and parent["Личные вещи"] < 0.1  # real 0.403 and 0.076
    assert parent.idxmax() == "Услуги" and parent.idxmin() == "Личные вещи"
    cats = frame.groupby("category_name").filter(lambda g: len(g) >= 200)
    means = cats.groupby("category_name")["expected_deal_probability"].mean()
    assert means.max() - means.min() > 0.25  # real spread 0.04 ... 0.40
    users = frame.groupby("user_type")["expected_deal_probability"].mean()
    assert users["Private"] > users["Company"] > users["Shop"]  # real 0.150 > 0.125 > 0.063


def test_expected_depends_on_the_description(stats: dict) -> None:
    frame = stats["all"]
    train = frame.iloc[: STATS["n_train"]]
    e = "expected_deal_probability"
    assert train.loc[train["description"].notna(), e].mean() > 1.5 * train.loc[train["description"].isna(), e].mean()
    private = frame[(frame["user_type"] == "Private") & frame["description"].notna()]
    assert private["description"].str.len().corr(private[e], method="spearman") > 0.1
    text = load_vocab()["text"]
    desc = frame["description"].fillna("")
    bargain = desc.apply(lambda s: any(p in s for p in text["bargain"]))
    firm = desc.apply(lambda s: any(p in s for p in text["firm"]))
    assert bargain.sum() > 500 and firm.sum() > 200
    assert frame.loc[bargain & ~firm, e].mean() > frame.loc[firm & ~bargain, e].mean() + 0.02


def test_expected_depends_on_what_the_photo_looks_like(photo_stats: pd.DataFrame) -> None:
    # blur, bad exposure and near-blank pictures lower the target and all flatten the picture's contrast; compared
    # within categories, so that what the category does to both (its object shapes, its effect) does not count
    e = photo_stats["expected_deal_probability"]
    logit = np.log(e / (1 - e))
    residual = logit - logit.groupby(photo_stats["category_name"]).transform("mean")
    rho = photo_stats["contrast"].corr(residual, method="spearman")
    assert rho > 0.07, rho  # about 0.15 here; about 0.0 when the photo's quality carries no effect
    blank = (photo_stats["mean"] > 245) & (photo_stats["contrast"] < 8)
    assert 5 <= blank.sum() < 0.05 * len(photo_stats)  # some near-blank uploads (avito-facts 9)


# ---------------------------------------------------------------------------------------- 6. ensure_synthetic

SMALL = {"n_train": 40, "n_test": 10, "seed": 4}


def test_ensure_reuses_a_complete_set(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = tmp_path / "data"
    assert ensure_synthetic(root, **SMALL) == root.absolute()
    manifest = json.loads((root / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["params"] == {**SMALL, "with_images": True}
    before = (root / "train.csv").stat()

    def no_generate(*args: object, **kwargs: object) -> None:
        raise AssertionError("a complete set was generated again")

    monkeypatch.setattr(synthetic, "generate", no_generate)
    assert ensure_synthetic(root, **SMALL) == root.absolute()
    after = (root / "train.csv").stat()
    assert (after.st_mtime_ns, after.st_ino) == (before.st_mtime_ns, before.st_ino)
    assert _siblings(root) == []


def test_ensure_regenerates_when_parameters_change(tmp_path: Path) -> None:
    root = tmp_path / "data"
    ensure_synthetic(root, **SMALL)
    first = (root / "train.csv").read_bytes()
    ensure_synthetic(root, **{**SMALL, "seed": SMALL["seed"] + 1})
    assert (root / "train.csv").read_bytes() != first
    assert json.loads((root / "manifest.json").read_text(encoding="utf-8"))["params"]["seed"] == SMALL["seed"] + 1
    ensure_synthetic(root, **{**SMALL, "seed": SMALL["seed"] + 1}, with_images=False)
    assert not (root / "images").exists() or not any((root / "images").iterdir())
    ensure_synthetic(root, **{**SMALL, "n_test": 20})
    assert len(pd.read_csv(root / "test.csv")) == 20
    assert _siblings(root) == []


def test_ensure_repairs_an_interrupted_generation(tmp_path: Path) -> None:
    reference = tmp_path / "reference"
    generate(reference, **SMALL)
    root = tmp_path / "data"
    ensure_synthetic(root, **SMALL)
    # a run that died before writing manifest.json, plus the temporary folders of crashed generators
    (root / "manifest.json").unlink()
    (root / "train.csv").write_text("item_id\n", encoding="utf-8")
    for stale in (f".{root.name}.tmp-999999", f".{root.name}.old-999998"):
        (tmp_path / stale / "images").mkdir(parents=True)
        (tmp_path / stale / "train.csv").write_text("half written", encoding="utf-8")
    ensure_synthetic(root, **SMALL)
    for name in ("train.csv", "test.csv", "expected.csv", "manifest.json"):
        assert (root / name).read_bytes() == (reference / name).read_bytes(), name
    assert _siblings(root) == []
    # a photo that went missing also makes the set incomplete
    next((root / "images").iterdir()).unlink()
    ensure_synthetic(root, **SMALL)
    assert sorted(p.name for p in (root / "images").iterdir()) == sorted(
        p.name for p in (reference / "images").iterdir()
    )


def test_ensure_from_two_processes_at_once(tmp_path: Path) -> None:
    root = tmp_path / "shared"
    params = {"n_train": 250, "n_test": 50, "seed": 6}
    with ProcessPoolExecutor(2, mp_context=get_context("spawn")) as pool:
        futures = [pool.submit(ensure_synthetic, root, **params) for _ in range(2)]
        results = [f.result(timeout=120) for f in futures]
    assert results == [root.absolute()] * 2
    reference = tmp_path / "reference"
    generate(reference, **params)
    for name in ("train.csv", "test.csv", "expected.csv", "manifest.json"):
        assert (root / name).read_bytes() == (reference / name).read_bytes(), name
    assert len(list((root / "images").iterdir())) == len(list((reference / "images").iterdir()))
    assert _siblings(root) == []


# ------------------------------------------------------------------------------------- 7. no copied real texts


def _sentences(text: str) -> list[str]:
    return [s.strip() for s in re.split(r"(?<=[.!?])\s+|\n", text) if s.strip()]


@pytest.fixture(scope="module")
def real_texts() -> dict[str, set[str]]:
    if not (REAL / "train.csv").is_file():
        pytest.skip("no real excerpt in ../shared/data/avito-real")
    frames = [pd.read_csv(REAL / name) for name in ("train.csv", "test.csv")]
    titles = set(json.loads((REAL / "active_texts" / "title.json").read_text(encoding="utf-8")))
    descriptions = set(json.loads((REAL / "active_texts" / "description.json").read_text(encoding="utf-8")))
    for frame in frames:
        titles |= set(frame["title"].dropna())
        descriptions |= set(frame["description"].dropna())
    sentences = {s for d in descriptions for s in _sentences(d)}
    return {"titles": titles, "descriptions": descriptions, "sentences": sentences}


def _distinctive_title(title: str) -> bool:
    """Free text that nobody writes by chance. Avito's own templates ("2-к квартира, 45 м², 3/5 эт.",
    "Ford Focus, 2008") and short stock phrases ("Продам коляску") recur in real and synthetic data alike."""
    return len(title.split()) >= 5 and not re.search(r"\d", title)


def test_no_real_title_or_description_is_copied(real_texts: dict, stats: dict, photo_frames: tuple) -> None:
    frame = pd.concat([stats["all"], *photo_frames[:2]], ignore_index=True)
    copied = {t for t in set(frame["title"]) & real_texts["titles"] if _distinctive_title(t)}
    assert not copied
    descriptions = set(frame["description"].dropna())
    assert not {d for d in descriptions & real_texts["descriptions"] if len(d) >= 30}
    ours = {s for d in descriptions for s in _sentences(d) if len(s) >= 30}
    assert not ours & real_texts["sentences"]


def test_the_word_lists_hold_no_real_text(real_texts: dict) -> None:
    def strings(node: object):
        if isinstance(node, dict):
            for key, value in node.items():
                yield key
                yield from strings(value)
        elif isinstance(node, list):
            for value in node:
                yield from strings(value)
        elif isinstance(node, str):
            yield node

    vocab = set(strings(load_vocab()))
    assert not {s for s in vocab & real_texts["titles"] if len(s.split()) >= 4}
    long_real = {s for s in real_texts["descriptions"] | real_texts["sentences"] if len(s) >= 30}
    assert not {s for s in vocab if len(s) >= 30} & long_real


# ------------------------------------------------------------------------------------------ 8. invalid arguments

BAD = [
    ({"n_train": 0}, "n_train must be an integer >= 1"),
    ({"n_train": -5}, "n_train must be an integer >= 1"),
    ({"n_train": True}, "n_train must be an integer >= 1"),
    ({"n_train": 10.0}, "n_train must be an integer >= 1"),
    ({"n_train": "10"}, "n_train must be an integer >= 1"),
    ({"n_test": -1}, "n_test must be an integer >= 0"),
    ({"n_test": False}, "n_test must be an integer >= 0"),
    ({"seed": -1}, "seed must be an integer >= 0"),
    ({"seed": True}, "seed must be an integer >= 0"),
    ({"seed": 1.5}, "seed must be an integer >= 0"),
]


@pytest.mark.parametrize(("bad", "message"), BAD, ids=[f"{next(iter(b))}={next(iter(b.values()))!r}" for b, _ in BAD])
@pytest.mark.parametrize("function", [generate, ensure_synthetic], ids=["generate", "ensure_synthetic"])
def test_invalid_arguments_raise(function, bad: dict, message: str, tmp_path: Path) -> None:
    root = tmp_path / "data"
    with pytest.raises(ValueError, match=re.escape(message)):
        function(root, **{"n_train": 10, "n_test": 5, "seed": 0, "with_images": False, **bad})
    assert not root.exists()  # nothing is written before the arguments are checked
    assert not list(tmp_path.iterdir())


def test_zero_test_rows_still_write_a_test_header(tmp_path: Path) -> None:
    generate(tmp_path, n_train=20, n_test=0, with_images=False)
    test = pd.read_csv(tmp_path / "test.csv")
    assert list(test.columns) == TEST_COLUMNS and len(test) == 0
    assert len(pd.read_csv(tmp_path / "expected.csv")) == 20
