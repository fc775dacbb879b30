"""ServingModel: a trained DemandRegressor as a plain nn.Module over positional tensors, for ONNX and TorchScript.

The exported graph takes the pre-encoded batch tensors (named by `input_names`, see demandnet/batch.py) and returns
(B,) deal_probability in [0, 1]. Each branch class has an adapter here that says which inputs it reads and, where its
training forward cannot be exported, gives an exact equivalent (the navec GRU runs on packed sequences, whose sizes
depend on the data; here it runs on the padded batch with the backward direction reversed per row).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor, nn

from demandnet import batch as keys
from demandnet.data.text import PAD
from demandnet.models.image import ImageBranch
from demandnet.models.regressor import DemandRegressor
from demandnet.models.tabular import TabularBranch
from demandnet.models.text import NavecTextBranch, TransformerTextBranch, masked_mean_max


class ExportError(RuntimeError):
    """A branch of the model cannot be exported; the message says which and why."""


class PaddedBiGRU(nn.Module):
    """A bidirectional batch-first nn.GRU over right-padded rows, without packing.

    The forward direction over the padded row gives the packed outputs at every real step. The backward direction
    must start at each row's last real step, so each row's first `length` steps are reversed in place (a per-row
    gather, its own inverse), run through the forward-style GRU with the reverse weights, and reversed back.
    Outputs at padding steps are not those of packing; the caller masks them out.
    """

    def __init__(self, gru: nn.GRU) -> None:
        super().__init__()
        if not (gru.bidirectional and gru.batch_first and gru.num_layers == 1):
            raise ExportError("text branch: only a one-layer bidirectional batch-first GRU can be exported")
        self.forward_rnn = nn.GRU(gru.input_size, gru.hidden_size, batch_first=True, bias=gru.bias)
        self.backward_rnn = nn.GRU(gru.input_size, gru.hidden_size, batch_first=True, bias=gru.bias)
        names = ["weight_ih_l0", "weight_hh_l0"] + (["bias_ih_l0", "bias_hh_l0"] if gru.bias else [])
        with torch.no_grad():
            for name in names:
                getattr(self.forward_rnn, name).copy_(getattr(gru, name))
                getattr(self.backward_rnn, name).copy_(getattr(gru, f"{name}_reverse"))

    def forward(self, x: Tensor, lengths: Tensor) -> Tensor:
        """(B, L, E), (B,) lengths >= 1 -> (B, L, 2H)."""
        steps = torch.arange(x.shape[1], device=x.device).unsqueeze(0)  # (1, L)
        ends = lengths.unsqueeze(1)  # (B, 1)
        order = torch.where(steps < ends, ends - 1 - steps, steps)  # (B, L): reverse the real steps of each row
        forward, _ = self.forward_rnn(x)
        flipped = torch.gather(x, 1, order.unsqueeze(-1).expand(-1, -1, x.shape[2]))
        backward, _ = self.backward_rnn(flipped)
        backward = torch.gather(backward, 1, order.unsqueeze(-1).expand(-1, -1, backward.shape[2]))
        return torch.cat([forward, backward], dim=-1)


class NavecForExport(nn.Module):
    """NavecTextBranch's eval forward (dropout is off) with PaddedBiGRU in place of the packed GRU."""

    def __init__(self, branch: NavecTextBranch) -> None:
        super().__init__()
        self.branch = branch
        self.rnn = PaddedBiGRU(branch.rnn) if branch.encoder == "gru" else None

    def _encode(self, ids: Tensor) -> Tensor:
        mask = ids != PAD  # (B, L)
        x = self.branch._embed(ids)  # (B, L, E)
        if self.rnn is None:
            return self.branch.proj(masked_mean_max(x, mask))
        lengths = mask.sum(1).clamp(min=1)  # empty rows: one padding step, masked out below
        return masked_mean_max(self.rnn(x, lengths), mask)  # (B, L, 2H) -> (B, 4H)

    def forward(self, batch: dict[str, Tensor]) -> Tensor:
        return torch.cat([self._encode(batch[keys.field_ids(f)].long()) for f in self.branch.fields], dim=-1)


# branch class -> (the batch keys it reads, the module that computes its features in the exported graph)
ADAPTERS: dict[type, tuple[Callable[[nn.Module], list[str]], Callable[[nn.Module], nn.Module]]] = {
    ImageBranch: (lambda b: [keys.IMAGE, keys.HAS_IMAGE], lambda b: b),
    NavecTextBranch: (lambda b: [keys.field_ids(f) for f in b.fields], NavecForExport),
    TransformerTextBranch: (lambda b: [keys.TEXT_IDS, keys.TEXT_MASK], lambda b: b),
    TabularBranch: (lambda b: [keys.CATEGORICAL, keys.NUMERIC], lambda b: b),
}


class ServingModel(nn.Module):
    """forward(*tensors in `input_names` order) -> (B,) deal_probability; the eval-mode model's predictions."""

    def __init__(self, model: DemandRegressor) -> None:
        super().__init__()
        model = model.eval()
        adapted, names = [], []
        for name, branch in model.branches.items():
            if type(branch) not in ADAPTERS:
                raise ExportError(
                    f"branch {name!r} ({type(branch).__module__}.{type(branch).__qualname__}) has no export adapter in "
                    "demandnet/serving_model.py (ADAPTERS): add the batch keys it reads and how to run it"
                )
            inputs, adapt = ADAPTERS[type(branch)]
            adapted.append(adapt(branch))
            names += [k for k in inputs(branch) if k not in names]
        self.branches = nn.ModuleList(adapted)
        self.fusion = model.fusion
        self.input_names = names
        self.eval()

    def forward(self, *tensors: Tensor) -> Tensor:
        batch = dict(zip(self.input_names, tensors))
        logits = self.fusion([branch(batch) for branch in self.branches])
        return torch.sigmoid(logits.float())  # (B,)
