"""Text branches: navec word vectors with a GRU or pooling encoder, or a HuggingFace transformer.

Each is an nn.Module with `out_dim` and forward(batch) -> (B, out_dim) features (never predictions).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor, nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from demandnet.batch import TEXT_IDS, TEXT_MASK, field_ids
from demandnet.data.hf_tokenizer import config_from_dict
from demandnet.data.text import PAD, UNK


def masked_mean_max(x: Tensor, mask: Tensor) -> Tensor:
    """(B, L, D), (B, L) bool -> (B, 2D) mean and max over the unmasked steps; zeros for rows with none."""
    weights = mask.unsqueeze(-1).to(x.dtype)
    mean = (x * weights).sum(1) / weights.sum(1).clamp(min=1.0)
    largest = x.masked_fill(~mask.unsqueeze(-1), float("-inf")).amax(1)
    largest = largest.masked_fill(~mask.any(1, keepdim=True), 0.0)  # empty text: -inf -> 0
    return torch.cat([mean, largest], dim=-1)


def _trim(ids: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
    """Drop trailing columns that are padding in every row: (B, L) -> (B, L'), L' >= 1 (right padding only)."""
    if torch.jit.is_tracing() or torch.compiler.is_exporting():
        return ids, mask  # a speed-up whose width depends on the data: an exported graph keeps the input's width
    longest = max(int(mask.sum(1).max()), 1)
    return ids[:, :longest], mask[:, :longest]


class NavecTextBranch(nn.Module):
    """Each text field -> navec embeddings -> shared encoder -> pooled; fields concatenated.

    Id 0 is padding (masked out), id 1 an unknown word, which gets one learned vector that trains even when the
    navec table is frozen. encoder="gru": bidirectional GRU over packed sequences, then mean+max pooling;
    encoder="pool": mean+max pooling over the embeddings, then a linear layer.
    """

    def __init__(
        self,
        vocab_size: int,
        fields: list[str],
        embedding_dim: int = 300,
        hidden_size: int = 64,
        encoder: str = "gru",
        freeze: bool = True,
        dropout: float = 0.1,
        pretrained: bool = True,
        **_: object,
    ) -> None:
        super().__init__()
        if encoder not in ("gru", "pool"):
            raise ValueError(f"NavecTextBranch: encoder must be 'gru' or 'pool', got {encoder!r}")
        if not fields:
            raise ValueError("NavecTextBranch: needs at least one text field")
        self.fields = [str(field) for field in fields]
        self.encoder = encoder
        self.embedding = nn.Embedding(int(vocab_size), int(embedding_dim), padding_idx=PAD)
        self.embedding.weight.requires_grad_(not freeze)
        self.unknown = nn.Parameter(torch.zeros(int(embedding_dim)))
        self.dropout = nn.Dropout(dropout)
        if encoder == "gru":
            self.rnn = nn.GRU(int(embedding_dim), int(hidden_size), batch_first=True, bidirectional=True)
            field_dim = 4 * int(hidden_size)  # (mean, max) x (forward, backward)
        else:
            self.proj = nn.Linear(2 * int(embedding_dim), int(hidden_size))
            field_dim = int(hidden_size)
        self.out_dim = field_dim * len(self.fields)

    def load_pretrained_embeddings(self, matrix: np.ndarray) -> None:
        """Copy the (vocab_size, embedding_dim) navec table in (training start only; predict uses the checkpoint)."""
        weight = self.embedding.weight
        if tuple(matrix.shape) != tuple(weight.shape):
            raise ValueError(
                f"NavecTextBranch: embeddings of shape {tuple(matrix.shape)} do not fit the table "
                f"{tuple(weight.shape)}; the tokenizer and the branch disagree on vocab_size/dim"
            )
        with torch.no_grad():
            weight.copy_(torch.as_tensor(matrix, dtype=weight.dtype))
            weight[PAD].zero_()

    def _embed(self, ids: Tensor) -> Tensor:
        """(B, L) -> (B, L, E), unknown words replaced by the learned vector."""
        x = self.embedding(ids)
        x = torch.where((ids == UNK).unsqueeze(-1), self.unknown.to(x.dtype), x)
        return self.dropout(x)

    def _encode(self, ids: Tensor) -> Tensor:
        """(B, L) token ids -> (B, field_dim)."""
        ids, mask = _trim(ids, ids != PAD)
        x = self._embed(ids)
        if self.encoder == "pool":
            return self.proj(masked_mean_max(x, mask))  # (B, 2E) -> (B, H)
        lengths = mask.sum(1).clamp(min=1).cpu()  # empty rows run one padding step, masked out below
        packed = pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)
        out, _ = self.rnn(packed)
        out, _ = pad_packed_sequence(out, batch_first=True, total_length=ids.shape[1])  # (B, L, 2H)
        return masked_mean_max(out, mask)  # (B, L, 2H) -> (B, 4H)

    def forward(self, batch: dict[str, Tensor]) -> Tensor:
        return torch.cat([self._encode(batch[field_ids(field)].long()) for field in self.fields], dim=-1)


class TransformerTextBranch(nn.Module):
    """A HuggingFace encoder over the title/description pair, pooled to (B, hidden_size)."""

    def __init__(
        self,
        name_or_path: str,
        hf_config: dict | None = None,
        pretrained: bool = True,
        pooling: str = "cls",
        freeze: bool = False,
        **_: object,
    ) -> None:
        super().__init__()
        from transformers import AutoModel

        if pooling not in ("cls", "mean"):
            raise ValueError(f"TransformerTextBranch: pooling must be 'cls' or 'mean', got {pooling!r}")
        if pretrained:
            model = AutoModel.from_pretrained(name_or_path)
        elif hf_config is None:
            raise ValueError("TransformerTextBranch: pretrained=False needs hf_config (HFTokenizer.model_dims())")
        else:
            model = AutoModel.from_config(config_from_dict(hf_config))
        model = model.float()  # "auto" dtype may load half precision; keep fp32 master weights
        if getattr(model, "pooler", None) is not None:
            model.pooler = None  # the pooled head is unused (we pool ourselves) and would get no gradient
        model.requires_grad_(not freeze)
        self.model = model
        self.freeze = bool(freeze)
        self.pooling = pooling
        self.out_dim = int(model.config.hidden_size)
        self.train()  # from_pretrained returns the model in eval mode: dropout would be off while fine-tuning

    def train(self, mode: bool = True) -> TransformerTextBranch:
        super().train(mode)
        if self.freeze:
            self.model.eval()  # frozen: a fixed feature extractor, no dropout
        return self

    def forward(self, batch: dict[str, Tensor]) -> Tensor:
        ids, mask = _trim(batch[TEXT_IDS].long(), batch[TEXT_MASK].long())
        hidden = self.model(input_ids=ids, attention_mask=mask).last_hidden_state  # (B, L, H)
        if self.pooling == "cls":
            return hidden[:, 0]  # (B, L, H) -> (B, H)
        weights = mask.unsqueeze(-1).to(hidden.dtype)
        return (hidden * weights).sum(1) / weights.sum(1).clamp(min=1.0)  # masked mean: (B, L, H) -> (B, H)
