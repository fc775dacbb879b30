"""Russian text: normalisation, tokenisation and the navec word-vector vocabulary.

Text cells may be missing, NaN or of odd types: they become "" (an all-padding row), never an error.
Token arrays are built once per *distinct* text (titles repeat a lot), then gathered per row.
"""

from __future__ import annotations

import functools
import itertools
import logging
import math
import numbers
import os
import re
import unicodedata
from collections import Counter
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from demandnet.progress import progress

if TYPE_CHECKING:
    from navec import Navec

log = logging.getLogger(__name__)

PAD = 0
UNK = 1
NAVEC_DIM = 300
DEFAULT_MAX_LEN = {"title": 12, "description": 64}

# Zero-width space separates words; the other invisible marks (soft hyphen, joiners, BOM) sit inside words.
_INVISIBLE = {"\u200b": " ", "\u00ad": "", "\u200c": "", "\u200d": "", "\u2060": "", "\ufeff": ""}
_INVISIBLE_TABLE = str.maketrans(_INVISIBLE)
_INVISIBLE_RE = re.compile("[" + "".join(_INVISIBLE) + "]")
_WORD_RE = re.compile(r"[^\W_]+")  # runs of Unicode letters/digits: "iphone", "5s", "платье"; no "_"


def _as_text(value: object) -> str:
    """Any cell -> str: None, NaN, pd.NA, bools and other non-text objects -> ""; finite numbers -> "5", "2.5"."""
    if isinstance(value, str):
        text = value
    elif isinstance(value, numbers.Real) and not isinstance(value, (bool, np.bool_)):
        if not math.isfinite(value):
            return ""
        text = str(int(value)) if float(value).is_integer() and abs(value) < 1e15 else str(value)
    else:
        return ""
    if _INVISIBLE_RE.search(text):
        text = text.translate(_INVISIBLE_TABLE)
    return unicodedata.normalize("NFC", text)  # joins decomposed letters: "и" + breve -> "й"


def clean_text(value: object) -> str:
    """Any cell -> one space between words, stripped, case kept (for cased transformer tokenizers)."""
    return " ".join(_as_text(value).split())  # str.split() splits on every Unicode space, NBSP included


def normalize_text(value: object) -> str:
    """Any cell -> lower case, ё -> е, one space between words, stripped (odd values as in clean_text)."""
    return clean_text(value).lower().replace("ё", "е")


def tokenize(text: str) -> list[str]:
    """Words of letters and digits (Cyrillic, Latin, ...); punctuation, emoji and "_" separate words."""
    return _WORD_RE.findall(text)


def cell_words(value: object) -> list[str]:
    """tokenize(normalize_text(value)), without the whitespace pass that tokenising makes needless."""
    return _WORD_RE.findall(_as_text(value).lower().replace("ё", "е"))


def navec_path() -> str:
    """The navec vectors that ship inside natasha (no download needed)."""
    import natasha

    return os.path.join(os.path.dirname(natasha.__file__), "data", "emb", "navec_news_v1_1B_250K_300d_100q.tar")


@functools.lru_cache(maxsize=1)
def load_navec() -> Navec:
    """The navec vectors, loaded once per process (about 0.3 s, 50 MB)."""
    from navec import Navec

    return Navec.load(navec_path())


def factorize_texts(frame: pd.DataFrame, field: str) -> tuple[np.ndarray, list[object]]:
    """(N,) codes into the list of distinct raw values of `field`; -1 for missing cells or a missing column."""
    if field not in frame.columns:
        log.warning("text column %r is missing: all its rows are treated as empty text", field)
        return np.full(len(frame), -1, dtype=np.int64), []
    column = frame[field]
    try:
        codes, uniques = pd.factorize(column, use_na_sentinel=True)
    except TypeError:  # unhashable cells (lists, dicts): map them to text first
        codes, uniques = pd.factorize(column.map(_as_text), use_na_sentinel=True)
    return np.asarray(codes, dtype=np.int64), list(uniques)


_CHUNK = 100_000  # distinct texts tokenised at a time


def _word_table(frame: pd.DataFrame, field: str, length: int) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """(codes, table, words): (N,) codes into the distinct values of `field` (-1: missing), (U + 1, length) int32
    of each value's first `length` words as 1-based indices into `words` (0: padding; the last row is empty)."""
    codes, uniques = factorize_texts(frame, field)
    index: dict[str, int] = {}  # word -> 1-based index, in order of first occurrence
    table = np.zeros((len(uniques) + 1, length), dtype=np.int32)
    # In chunks of distinct values: the per-value word lists of 1.5M descriptions would take gigabytes at once.
    for start in progress(range(0, len(uniques), _CHUNK), f"tokenising {field}", -(-len(uniques) // _CHUNK)):
        per_value = [cell_words(value)[:length] for value in uniques[start : start + _CHUNK]]
        counts = np.fromiter(map(len, per_value), dtype=np.int64, count=len(per_value))
        flat = np.fromiter(itertools.chain.from_iterable(per_value), dtype=object, count=int(counts.sum()))
        local, words = pd.factorize(flat)  # in C: one code per distinct word of the chunk
        to_global = np.fromiter((index.setdefault(w, len(index) + 1) for w in words), dtype=np.int32, count=len(words))
        rows = np.repeat(np.arange(start, start + len(per_value)), counts)
        starts = np.repeat(np.cumsum(counts) - counts, counts)
        table[rows, np.arange(len(flat)) - starts] = to_global[local]
    return codes, table, list(index)


class NavecTokenizer:
    """Word ids over a vocabulary fitted on the train frame: 0 = padding, 1 = unknown, 2.. = navec words."""

    def __init__(
        self,
        max_len: dict[str, int] | None = None,
        max_vocab: int = 50000,
        min_count: int = 1,
        fields: tuple[str, ...] = ("title", "description"),
    ) -> None:
        self.fields = [str(field) for field in fields]
        lengths = dict(DEFAULT_MAX_LEN if max_len is None else max_len)
        missing = [field for field in self.fields if field not in lengths]
        if missing:
            raise ValueError(f"NavecTokenizer: max_len has no length for text field(s) {missing}; got {lengths}")
        self.max_len = {field: int(lengths[field]) for field in self.fields}
        if min(self.max_len.values(), default=1) < 1 or int(max_vocab) < 1 or int(min_count) < 1:
            raise ValueError(
                f"NavecTokenizer: max_len, max_vocab and min_count must be >= 1, got "
                f"{self.max_len}, {max_vocab}, {min_count}"
            )
        self.max_vocab = int(max_vocab)
        self.min_count = int(min_count)
        self.words: list[str] | None = None
        self._ids: dict[str, int] = {}

    def fit(self, frame: pd.DataFrame) -> NavecTokenizer:
        """Keep the words navec knows that occur >= min_count times in `frame` (train only), most frequent first."""
        self.fit_transform(frame, np.arange(len(frame)))
        return self

    def fit_transform(self, frame: pd.DataFrame, fit_rows: np.ndarray) -> dict[str, np.ndarray]:
        """Fit on `frame`'s rows `fit_rows` and transform all of `frame`, tokenising each distinct text once."""
        tables = {field: _word_table(frame, field, self.max_len[field]) for field in self.fields}
        counts: Counter[str] = Counter()
        for codes, table, words in tables.values():
            used = codes[fit_rows]
            per_word = np.bincount(table[used[used >= 0]].ravel(), minlength=len(words) + 1)
            counts.update({words[i - 1]: int(n) for i in np.flatnonzero(per_word[1:]) + 1 for n in (per_word[i],)})
        known = load_navec().vocab.word_ids
        kept = [(word, n) for word, n in counts.items() if n >= self.min_count and word in known]
        kept.sort(key=lambda item: (-item[1], item[0]))  # ties broken by the word: independent of row order
        self._set_words([word for word, _ in kept[: self.max_vocab]])
        log.info("navec vocabulary: %d of %d distinct train words", len(self.words), len(counts))
        return {f"{field}_ids": self._ids_of(*tables[field]) for field in self.fields}

    def _set_words(self, words: list[str]) -> None:
        self.words = list(words)
        self._ids = {word: index + 2 for index, word in enumerate(self.words)}

    def _check_fitted(self) -> None:
        if self.words is None:
            raise RuntimeError("NavecTokenizer is not fitted: call fit(train_frame) or load_state_dict(state) first")

    def transform(self, frame: pd.DataFrame) -> dict[str, np.ndarray]:
        """{"<field>_ids": (N, max_len[field]) int32} per field, right-padded with 0, unknown words as 1."""
        self._check_fitted()
        return {f"{field}_ids": self._ids_of(*_word_table(frame, field, self.max_len[field])) for field in self.fields}

    def _ids_of(self, codes: np.ndarray, table: np.ndarray, words: list[str]) -> np.ndarray:
        """Word-index table -> vocabulary ids per row: (U + 1, L) -> (N, L), via one lookup array."""
        lookup = np.array([PAD, *(self._ids.get(word, UNK) for word in words)], dtype=np.int32)
        return lookup[table][codes]

    def state_dict(self) -> dict:
        """Plain types only, so the state survives torch.load(weights_only=True)."""
        self._check_fitted()
        return {
            "max_len": dict(self.max_len),
            "max_vocab": self.max_vocab,
            "min_count": self.min_count,
            "fields": list(self.fields),
            "words": list(self.words),
        }

    def load_state_dict(self, state: dict) -> None:
        """Restore a fitted tokenizer; navec itself is not needed to transform afterwards."""
        self.__init__(state["max_len"], state["max_vocab"], state["min_count"], tuple(state["fields"]))
        self._set_words(state["words"])

    def model_dims(self) -> dict:
        """What NavecTextBranch needs from the data."""
        self._check_fitted()
        return {"vocab_size": len(self.words) + 2, "fields": list(self.fields), "embedding_dim": NAVEC_DIM}

    def pretrained_embeddings(self) -> np.ndarray:
        """(vocab_size, 300) float32: navec vectors of the vocabulary; padding and unknown rows are zero."""
        self._check_fitted()
        navec = load_navec()
        matrix = np.zeros((len(self.words) + 2, NAVEC_DIM), dtype=np.float32)
        if self.words:
            rows = [navec.vocab.word_ids[word] for word in self.words]
            matrix[2:] = navec.pq.sampled(rows).unpack()
        return matrix
