"""Title + description as one pair for a HuggingFace transformer, with a self-contained saved state.

fit() reads the tokenizer and config from a hub name or a local folder; state_dict() keeps the fast tokenizer's
JSON and the config dict, so load_state_dict() (prediction) needs neither files nor network.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd

from demandnet.data.text import clean_text, factorize_texts
from demandnet.progress import progress

# These models number positions from padding_idx + 1, so two of max_position_embeddings are never usable.
_POSITION_OFFSET_MODELS = {
    "roberta",
    "xlm-roberta",
    "xlm-roberta-xl",
    "camembert",
    "longformer",
    "data2vec-text",
    "mpnet",
}
_CHUNK = 50_000  # rows per tokenizer call: bounds the memory of Python lists of ids
_CHARS_PER_TOKEN = 16  # texts are cut to this many characters per kept token before tokenising (speed only)


def config_from_dict(hf_config: dict):  # -> transformers.PretrainedConfig
    """Rebuild a transformers config from config.to_dict() output, without files."""
    from transformers.models.auto.configuration_auto import CONFIG_MAPPING

    model_type = hf_config.get("model_type")
    if model_type not in CONFIG_MAPPING:
        raise ValueError(f"hf_config has model_type {model_type!r}, which this transformers version does not know")
    return CONFIG_MAPPING[model_type].from_dict(dict(hf_config))


def position_limit(hf_config: dict, model_max_length: float, max_length: int) -> int:
    """Longest usable sequence: max_length, capped by the model's position table and the tokenizer's limit."""
    limits = [int(max_length)]
    positions = hf_config.get("max_position_embeddings")
    if isinstance(positions, int) and positions > 0:
        offset = 2 if hf_config.get("model_type") in _POSITION_OFFSET_MODELS else 0
        limits.append(positions - offset)
    if model_max_length < 1e9:  # tokenizers without a known limit report a huge number
        limits.append(int(model_max_length))
    return min(limits)


class HFTokenizer:
    """{"text_ids", "text_mask"} (N, L) arrays from the title and description of a frame, right-padded."""

    def __init__(self, name_or_path: str, max_length: int = 128) -> None:
        if int(max_length) < 4:
            raise ValueError(f"HFTokenizer: max_length must be >= 4 (special tokens + text), got {max_length}")
        self.name_or_path = str(name_or_path)
        self.max_length = int(max_length)
        self._state: dict | None = None
        self._tokenizer = None

    def fit(self, frame: pd.DataFrame | None = None) -> HFTokenizer:
        """Load the fast tokenizer and config from name_or_path; nothing is learnt from the data."""
        from transformers import AutoConfig, AutoTokenizer

        try:
            tokenizer = AutoTokenizer.from_pretrained(self.name_or_path, use_fast=True)
            config = AutoConfig.from_pretrained(self.name_or_path)
        except OSError as error:
            raise OSError(
                f"HFTokenizer: cannot load a tokenizer/config from {self.name_or_path!r} (a local folder "
                f"or a hub name; the hub needs network access): {error}"
            ) from error
        if not getattr(tokenizer, "is_fast", False):
            raise ValueError(f"HFTokenizer: {self.name_or_path!r} has no fast (tokenizer.json) tokenizer")
        if tokenizer.pad_token is None:
            raise ValueError(f"HFTokenizer: the tokenizer of {self.name_or_path!r} has no padding token")
        hf_config = json.loads(config.to_json_string(use_diff=False))  # plain JSON types only
        self.load_state_dict(
            {
                "name_or_path": self.name_or_path,
                "max_length": self.max_length,
                "limit": position_limit(hf_config, tokenizer.model_max_length, self.max_length),
                "tokenizer_json": tokenizer.backend_tokenizer.to_str(),
                "special_tokens": _special_tokens(tokenizer),
                "hf_config": hf_config,
            }
        )
        return self

    def _check_fitted(self) -> None:
        if self._state is None:
            raise RuntimeError("HFTokenizer is not fitted: call fit() or load_state_dict(state) first")

    @property
    def length(self) -> int:
        """L, the width of the arrays: min(max_length, the model's position limit)."""
        self._check_fitted()
        return int(self._state["limit"])

    def transform(self, frame: pd.DataFrame) -> dict[str, np.ndarray]:
        """{"text_ids": (N, L) int32, "text_mask": (N, L) int8}; missing texts encode as an empty pair."""
        self._check_fitted()
        length = self.length
        titles = _texts(frame, "title", length)
        descriptions = _texts(frame, "description", length)
        ids = np.zeros((len(frame), length), dtype=np.int32)
        mask = np.zeros((len(frame), length), dtype=np.int8)
        starts = range(0, len(frame), _CHUNK)
        for start in progress(starts, "tokenizing", len(starts), unit="chunk"):
            stop = start + _CHUNK
            encoded = self._tokenizer(
                titles[start:stop],
                descriptions[start:stop],
                truncation="longest_first",
                max_length=length,
                padding="max_length",
                return_attention_mask=True,
                return_token_type_ids=False,
            )
            ids[start:stop] = np.asarray(encoded["input_ids"], dtype=np.int32).reshape(-1, length)
            mask[start:stop] = np.asarray(encoded["attention_mask"], dtype=np.int8).reshape(-1, length)
        return {"text_ids": ids, "text_mask": mask}

    def state_dict(self) -> dict:
        """Plain types only: the tokenizer JSON string, special tokens, the config dict and the lengths."""
        self._check_fitted()
        return json.loads(json.dumps(self._state))  # a deep copy

    def load_state_dict(self, state: dict) -> None:
        """Rebuild the exact tokenizer from the saved JSON; name_or_path need not exist any more."""
        from tokenizers import Tokenizer
        from transformers import PreTrainedTokenizerFast

        tokenizer = PreTrainedTokenizerFast(
            tokenizer_object=Tokenizer.from_str(state["tokenizer_json"]), **state["special_tokens"]
        )
        tokenizer.padding_side = "right"  # the branch trims trailing padding and reads CLS at position 0
        tokenizer.truncation_side = "right"
        self.name_or_path = str(state["name_or_path"])
        self.max_length = int(state["max_length"])
        self._state = dict(state)
        self._tokenizer = tokenizer

    def model_dims(self) -> dict:
        """What TransformerTextBranch needs to rebuild the model without files."""
        self._check_fitted()
        return {"hf_config": json.loads(json.dumps(self._state["hf_config"]))}


def _special_tokens(tokenizer) -> dict:
    """The named special tokens (cls, sep, pad, ...) as plain strings; ids and templates live in the JSON."""
    names = ("bos_token", "eos_token", "unk_token", "sep_token", "pad_token", "cls_token", "mask_token")
    return {name: str(getattr(tokenizer, name)) for name in names if getattr(tokenizer, name, None) is not None}


def _texts(frame: pd.DataFrame, field: str, length: int) -> list[str]:
    """Cleaned text per row (case kept: cased models need it), cut to a bound that keeps >= `length` tokens."""
    codes, uniques = factorize_texts(frame, field)
    limit = _CHARS_PER_TOKEN * length
    cleaned = [clean_text(value)[:limit] for value in uniques] + [""]  # the last entry serves missing cells (-1)
    return [cleaned[code] for code in codes.tolist()]
