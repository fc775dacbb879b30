"""Fusion head: sizes itself from the branches' out_dim; optional per-branch projection, concat, MLP, one logit."""

from __future__ import annotations

import torch
from torch import nn


class FusionHead(nn.Module):
    def __init__(
        self,
        in_dims: list[int],
        hidden_sizes: list[int] | None = None,
        projection_dim: int | None = None,
        dropout: float = 0.2,
        output_bias: float = 0.0,
    ) -> None:
        super().__init__()
        hidden_sizes = list(hidden_sizes or [128, 64])
        # Projection evens out branch widths, so a 512-wide CNN does not drown a 64-wide text encoder.
        self.projections = nn.ModuleList(
            nn.Sequential(nn.Linear(d, projection_dim), nn.ReLU()) if projection_dim else nn.Identity() for d in in_dims
        )
        width = projection_dim * len(in_dims) if projection_dim else sum(in_dims)
        layers: list[nn.Module] = []
        for size in hidden_sizes:
            layers += [nn.Linear(width, size), nn.ReLU(), nn.Dropout(dropout)]
            width = size
        out = nn.Linear(width, 1)
        nn.init.constant_(out.bias, output_bias)  # start from the train mean, not sigmoid(0) = 0.5
        self.mlp = nn.Sequential(*layers, out)

    def forward(self, features: list[torch.Tensor]) -> torch.Tensor:
        joined = torch.cat([p(f) for p, f in zip(self.projections, features)], dim=1)  # (B, sum D)
        return self.mlp(joined).squeeze(1)  # (B,) logits
