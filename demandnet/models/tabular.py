"""Tabular branch: one embedding per categorical column (index 0 = unknown) plus the numeric features, then an MLP."""

from __future__ import annotations

import torch
from torch import nn

from demandnet import batch as keys


def embedding_size(cardinality: int, cap: int) -> int:
    """fastai's rule of thumb: grows like n^0.56, capped."""
    return max(2, min(cap, round(1.6 * cardinality**0.56)))


class TabularBranch(nn.Module):
    def __init__(
        self,
        cardinalities: list[int],
        num_numeric: int,
        max_embedding_dim: int = 32,
        hidden_size: int = 128,
        dropout: float = 0.1,
        **_: object,
    ) -> None:
        super().__init__()
        self.embeddings = nn.ModuleList(nn.Embedding(n, embedding_size(n, max_embedding_dim)) for n in cardinalities)
        width = sum(e.embedding_dim for e in self.embeddings) + num_numeric
        self.mlp = nn.Sequential(
            nn.Dropout(dropout), nn.Linear(width, hidden_size), nn.ReLU(), nn.LayerNorm(hidden_size)
        )  # fmt: skip
        self.out_dim = hidden_size

    def forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        codes = batch[keys.CATEGORICAL]  # (B, C)
        embedded = [emb(codes[:, j]) for j, emb in enumerate(self.embeddings)]  # C x (B, E_j)
        return self.mlp(torch.cat([*embedded, batch[keys.NUMERIC]], dim=1))  # (B, sum E_j + F) -> (B, H)
