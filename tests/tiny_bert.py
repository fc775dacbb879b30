"""A tiny random BERT with a Russian WordPiece vocabulary, saved like a hub model folder, built offline."""

from __future__ import annotations

from pathlib import Path

import torch
from transformers import BertConfig, BertModel, BertTokenizerFast

SPECIAL = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
WORDS = [
    "продам",
    "платье",
    "свадебное",
    "дом",
    "на",
    "участке",
    "участок",
    "ижс",
    "квартира",
    "в",
    "хорошем",
    "отличном",
    "состоянии",
    "торг",
    "уместен",
    "новый",
    "новая",
    "детская",
    "куртка",
    "для",
    "девочки",
    "мальчика",
    "телефон",
    "iphone",
    "samsung",
    "galaxy",
    "5s",
    "коляска",
    "диван",
    "шкаф",
    "гараж",
    "м",
    "к",
    "эт",
]
PIECES = ["##а", "##ы", "##и", "##е", "##ой", "##ом", "##ка", "##ки", "##s", "##5", "##0", "##1"]
CHARS = list("абвгдежзийклмнопрстуфхцчшщъыьэюяabcdefghijklmnopqrstuvwxyz0123456789.,!?-()")
MAX_POSITIONS = 64


def make_tiny_bert(folder: Path) -> Path:
    """Write config, weights and a fast tokenizer into `folder`; return it (usable as name_or_path)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    vocab = list(dict.fromkeys(SPECIAL + WORDS + PIECES + CHARS + [f"##{c}" for c in CHARS]))
    vocab_file = folder / "vocab.txt"
    vocab_file.write_text("\n".join(vocab) + "\n", encoding="utf-8")
    # Positional: the first argument is `vocab_file` in transformers 4 and `vocab` (a path or dict) in 5.
    tokenizer = BertTokenizerFast(str(vocab_file), do_lower_case=True)
    tokenizer.save_pretrained(str(folder))
    config = BertConfig(
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=MAX_POSITIONS,
        vocab_size=len(vocab),
    )
    torch.manual_seed(0)
    BertModel(config).save_pretrained(str(folder))
    return folder
