"""Russian text: normalisation, navec vocabulary, HF tokenizer state, and the two text branches."""

from __future__ import annotations

import io
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from demandnet.batch import TEXT_IDS, TEXT_MASK
from demandnet.data.hf_tokenizer import HFTokenizer
from demandnet.data.text import UNK, NavecTokenizer, cell_words, load_navec, normalize_text, tokenize
from demandnet.models.text import NavecTextBranch, TransformerTextBranch
from tests.tiny_bert import MAX_POSITIONS, make_tiny_bert

TRAIN = pd.DataFrame(
    {
        "title": ["Продам платье", "Свадебное ПЛАТЬЕ", "Дом на участке", None, "iPhone 5s"],
        "description": ["В хорошем состоянии, торг уместен!", float("nan"), "Участок ИЖС, ёлка у дома", "😀😀", 12345],
    }
)
TEST = pd.DataFrame({"title": ["Детская коляска", "платье"], "description": ["коляска в отличном состоянии", ""]})


def reload(state: dict) -> dict:
    """torch.save -> torch.load(weights_only=True), as a checkpoint does."""
    buffer = io.BytesIO()
    torch.save(state, buffer)
    buffer.seek(0)
    return torch.load(buffer, weights_only=True)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("Ёлка ЗЕЛЁНАЯ", "елка зеленая"),
        ("цена\u00a0100\u202fруб\u2009\u3000торг", "цена 100 руб торг"),
        ("  много \n\t пробелов  ", "много пробелов"),
        ("со\u00adва и\u0306од", "сова йод"),  # soft hyphen dropped, decomposed й joined
        ("iPhone 5S Продам", "iphone 5s продам"),
        (None, ""),
        (float("nan"), ""),
        (pd.NA, ""),
        (np.nan, ""),
        (True, ""),
        ([1, 2], ""),
        (5, "5"),
        (5.0, "5"),
        (2.5, "2.5"),
        (np.int64(7), "7"),
        (float("inf"), ""),
        ("😀🔥", "😀🔥"),
        ("12345", "12345"),
    ],
)
def test_normalize_text(value: object, expected: str) -> None:
    assert normalize_text(value) == expected


def test_tokenize_keeps_words_and_drops_punctuation() -> None:
    assert tokenize(normalize_text("iPhone 5s, б/у!!! 😀 Ёлка_зелёная (новая)")) == [
        "iphone",
        "5s",
        "б",
        "у",
        "елка",
        "зеленая",
        "новая",
    ]
    assert tokenize(normalize_text("😀🔥!!!")) == [] and tokenize(normalize_text("2017")) == ["2017"]
    long_text = "слово, " * 5000  # 35,000 characters
    assert len(tokenize(normalize_text(long_text))) == 5000
    for value in list(TRAIN["description"]) + ["A\u00a0b\u200bc", long_text]:
        assert cell_words(value) == tokenize(normalize_text(value))


def test_navec_vocabulary_is_fitted_on_train_only() -> None:
    tokenizer = NavecTokenizer().fit(TRAIN)
    assert "платье" in tokenizer.words and "коляска" not in tokenizer.words
    assert tokenizer.words[0] == "платье"  # the most frequent word comes first
    assert all(word in load_navec().vocab.word_ids for word in tokenizer.words)
    out = tokenizer.transform(TEST)
    assert out["title_ids"][0, 1] == UNK and out["description_ids"][0, 0] == UNK  # "коляска": test only
    assert out["title_ids"][1, 0] == 2  # "платье"
    assert (out["description_ids"][1] == 0).all()  # empty text -> all padding
    refit = NavecTokenizer().fit(pd.concat([TRAIN, TEST]))
    assert refit.transform(TEST)["title_ids"][0, 1] > UNK


def test_navec_shapes_caps_and_odd_cells() -> None:
    frame = pd.DataFrame({"title": ["платье " * 40, None, 3.0], "description": ["дом " * 500, "ok", [1]]})
    tokenizer = NavecTokenizer(max_len={"title": 3, "description": 5}, max_vocab=1).fit(frame)
    assert tokenizer.words == ["дом"]  # 5 capped counts of "дом" beat 3 of "платье"
    out = tokenizer.transform(frame)
    assert set(out) == {"title_ids", "description_ids"}
    assert out["title_ids"].shape == (3, 3) and out["description_ids"].shape == (3, 5)
    assert all(array.dtype == np.int32 for array in out.values())
    assert out["title_ids"].tolist() == [[1, 1, 1], [0, 0, 0], [1, 0, 0]]
    assert out["description_ids"][0].tolist() == [2] * 5
    assert tokenizer.model_dims() == {"vocab_size": 3, "fields": ["title", "description"], "embedding_dim": 300}
    rare = NavecTokenizer(min_count=2).fit(TRAIN)
    assert rare.words == ["платье"]


def test_navec_missing_column_is_empty_text() -> None:
    tokenizer = NavecTokenizer().fit(TRAIN)
    out = tokenizer.transform(TRAIN[["title"]])
    assert out["description_ids"].shape == (5, 64) and not out["description_ids"].any()


def test_navec_state_round_trip_and_errors() -> None:
    with pytest.raises(RuntimeError, match="not fitted"):
        NavecTokenizer().transform(TEST)
    with pytest.raises(ValueError, match="max_len"):
        NavecTokenizer(max_len={"title": 5})
    tokenizer = NavecTokenizer(max_len={"title": 4, "description": 7}, min_count=1).fit(TRAIN)
    restored = NavecTokenizer()
    restored.load_state_dict(reload(tokenizer.state_dict()))
    for key, array in tokenizer.transform(TEST).items():
        np.testing.assert_array_equal(restored.transform(TEST)[key], array)
    assert restored.model_dims() == tokenizer.model_dims()


def test_navec_pretrained_embeddings() -> None:
    tokenizer = NavecTokenizer().fit(TRAIN)
    matrix = tokenizer.pretrained_embeddings()
    assert matrix.shape == (tokenizer.model_dims()["vocab_size"], 300) and matrix.dtype == np.float32
    assert not matrix[:2].any()
    np.testing.assert_allclose(matrix[2], load_navec()["платье"])


def navec_batch(vocab_size: int = 20) -> dict[str, torch.Tensor]:
    torch.manual_seed(0)
    title = torch.randint(2, vocab_size, (4, 6))
    title[0] = 0  # an empty title
    title[1, 3:] = 0
    title[2, 1] = UNK
    description = torch.randint(1, vocab_size, (4, 9))
    description[3] = 0  # an empty description
    description[0, 5:] = 0
    return {"title_ids": title, "description_ids": description}


@pytest.mark.parametrize("encoder", ["gru", "pool"])
@pytest.mark.parametrize("freeze", [True, False])
def test_navec_branch_shapes_and_gradients(encoder: str, freeze: bool) -> None:
    branch = NavecTextBranch(
        vocab_size=20, fields=["title", "description"], embedding_dim=8, hidden_size=5, encoder=encoder, freeze=freeze
    )
    batch = navec_batch()
    out = branch(batch)
    assert out.shape == (4, branch.out_dim) and branch.out_dim == (40 if encoder == "gru" else 10)
    assert torch.isfinite(out).all()
    out.square().sum().backward()
    for name, parameter in branch.named_parameters():
        if parameter.requires_grad:
            assert parameter.grad is not None and parameter.grad.abs().sum() > 0, name
    assert branch.embedding.weight.requires_grad is not freeze


@pytest.mark.parametrize("encoder", ["gru", "pool"])
def test_navec_branch_masks_padding(encoder: str) -> None:
    branch = NavecTextBranch(
        vocab_size=20, fields=["title", "description"], embedding_dim=8, hidden_size=5, encoder=encoder
    ).eval()
    batch = navec_batch()
    padded = {key: torch.nn.functional.pad(ids, (0, 7)) for key, ids in batch.items()}
    torch.testing.assert_close(branch(padded), branch(batch))
    alone = {key: ids[1:2] for key, ids in batch.items()}  # a row's output does not depend on its batch mates
    torch.testing.assert_close(branch(alone), branch(batch)[1:2])


def test_frozen_navec_table_stays_but_unknown_vector_trains() -> None:
    branch = NavecTextBranch(vocab_size=20, fields=["title", "description"], embedding_dim=8, hidden_size=5)
    matrix = np.random.default_rng(0).normal(size=(20, 8)).astype(np.float32)
    matrix[:2] = 0
    branch.load_pretrained_embeddings(matrix)
    table, unknown = branch.embedding.weight.detach().clone(), branch.unknown.detach().clone()
    optimizer = torch.optim.SGD([p for p in branch.parameters() if p.requires_grad], lr=0.1)
    branch(navec_batch()).square().sum().backward()
    optimizer.step()
    torch.testing.assert_close(branch.embedding.weight.detach(), table)
    torch.testing.assert_close(table, torch.from_numpy(matrix))
    assert not torch.equal(branch.unknown.detach(), unknown)
    with pytest.raises(ValueError, match="do not fit"):
        branch.load_pretrained_embeddings(matrix[:5])


@pytest.fixture(scope="module")
def tiny_bert(tmp_path_factory: pytest.TempPathFactory) -> str:
    return str(make_tiny_bert(tmp_path_factory.mktemp("hf") / "tiny-bert"))


def test_hf_tokenizer_truncates_within_position_limit(tiny_bert: str) -> None:
    frame = pd.DataFrame(
        {
            "title": ["Продам платье", None, "дом " * 200],
            "description": ["в хорошем состоянии", float("nan"), "участок ижс " * 3000],
        }
    )
    with pytest.raises(RuntimeError, match="not fitted"):
        HFTokenizer(tiny_bert).transform(frame)
    tokenizer = HFTokenizer(tiny_bert, max_length=1000).fit(frame)
    out = tokenizer.transform(frame)
    assert out[TEXT_IDS].shape == (3, MAX_POSITIONS) and out[TEXT_IDS].dtype == np.int32
    assert out[TEXT_MASK].dtype == np.int8
    lengths = out[TEXT_MASK].sum(1)
    assert lengths[2] == MAX_POSITIONS and lengths[1] == 3  # [CLS] [SEP] [SEP] for an empty pair
    vocab = {token: index for index, token in enumerate((Path(tiny_bert) / "vocab.txt").read_text("utf-8").split())}
    assert out[TEXT_IDS][0, 0] == vocab["[CLS]"] and out[TEXT_IDS][0, 1] == vocab["продам"]
    assert (out[TEXT_IDS][2] == vocab["[SEP]"]).sum() == 2  # both texts survive "longest_first" truncation
    assert not out[TEXT_IDS][out[TEXT_MASK] == 0].any()  # padding id 0 where masked
    assert HFTokenizer(tiny_bert, max_length=16).fit(frame).transform(frame)[TEXT_IDS].shape == (3, 16)


def test_hf_state_round_trip_and_branch_rebuilt_from_config(tiny_bert: str, tmp_path: Path) -> None:
    folder = shutil.copytree(tiny_bert, tmp_path / "copy")
    tokenizer = HFTokenizer(str(folder), max_length=32).fit(TRAIN)
    expected = tokenizer.transform(TRAIN)
    torch.manual_seed(0)
    trained = TransformerTextBranch(str(folder), pooling="mean").eval()
    state, dims, weights = reload(tokenizer.state_dict()), reload(tokenizer.model_dims()), trained.state_dict()
    shutil.rmtree(folder)

    restored = HFTokenizer("gone")
    restored.load_state_dict(state)
    arrays = restored.transform(TRAIN)
    for key, array in expected.items():
        np.testing.assert_array_equal(arrays[key], array)
    rebuilt = TransformerTextBranch("gone", hf_config=dims["hf_config"], pretrained=False, pooling="mean").eval()
    rebuilt.load_state_dict(weights)
    batch = {key: torch.from_numpy(array) for key, array in arrays.items()}
    torch.testing.assert_close(rebuilt(batch), trained(batch))


@pytest.mark.parametrize("pooling", ["cls", "mean"])
def test_transformer_branch_shapes_and_gradients(tiny_bert: str, pooling: str) -> None:
    tokenizer = HFTokenizer(tiny_bert, max_length=24).fit(TRAIN)
    batch = {key: torch.from_numpy(array) for key, array in tokenizer.transform(TRAIN).items()}
    branch = TransformerTextBranch(tiny_bert, pooling=pooling)
    out = branch(batch)
    assert out.shape == (len(TRAIN), 32) and branch.out_dim == 32 and torch.isfinite(out).all()
    out.square().sum().backward()
    for name, parameter in branch.named_parameters():
        assert parameter.grad is not None and parameter.grad.abs().sum() > 0, name
    frozen = TransformerTextBranch(tiny_bert, pooling=pooling, freeze=True)
    assert not any(parameter.requires_grad for parameter in frozen.parameters())


# Every kind of text real ads hold: empty, blank, missing, punctuation or emoji only, digits, 30,000 characters,
# Latin and Cyrillic mixed, no-break spaces, quoted multi-line, and cells of other types.
ODD_TEXTS = ["", "   ", None, float("nan"), "!!! ... ???", "😀🔥👍", "1234567890", "платье " * 4300,
             "iPhone 5S в идеальном сост", "цена\u00a0договорная", 'один\nдва, "в кавычках"', 42, [1, 2]]  # fmt: skip


@pytest.mark.parametrize("kind", ["navec-gru", "navec-pool", "transformer"])
def test_odd_texts_give_capped_ids_and_finite_features(kind: str, tiny_bert: str) -> None:
    frame = pd.DataFrame({"title": ODD_TEXTS, "description": list(reversed(ODD_TEXTS))})
    if kind == "transformer":
        tokenizer = HFTokenizer(tiny_bert, max_length=24).fit(frame)
        branch = TransformerTextBranch(tiny_bert)
    else:
        tokenizer = NavecTokenizer(max_len={"title": 8, "description": 16}).fit(TRAIN)
        dims = tokenizer.model_dims()
        branch = NavecTextBranch(dims["vocab_size"], dims["fields"], encoder=kind.split("-")[1], hidden_size=8)
    arrays = tokenizer.transform(frame)
    limits = {"text_ids": 24, "text_mask": 24, "title_ids": 8, "description_ids": 16}
    assert all(array.shape == (len(ODD_TEXTS), limits[key]) for key, array in arrays.items())
    out = branch.eval()({key: torch.from_numpy(array) for key, array in arrays.items()})
    assert out.shape[0] == len(ODD_TEXTS) and torch.isfinite(out).all()


def test_a_fine_tuned_transformer_trains_with_dropout_and_a_frozen_one_stays_in_eval(tiny_bert: str) -> None:
    assert TransformerTextBranch(tiny_bert).model.training  # from_pretrained alone would leave it in eval mode
    frozen = TransformerTextBranch(tiny_bert, freeze=True).train()
    assert not frozen.model.training
