"""Progress bars for the long steps outside Lightning's loops (data generation, text preprocessing).

Training, validation and prediction use Lightning's own bar: its RichProgressBar, which Lightning picks because
`rich` is a dependency (animated in a terminal; a log file or CI gets each bar's final line only).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable
from typing import TypeVar

from tqdm.auto import tqdm

T = TypeVar("T")
DELAY_S = 2.0  # a step that ends sooner shows no bar at all
_RANK_VARIABLES = ("RANK", "LOCAL_RANK", "SLURM_PROCID", "JSM_NAMESPACE_RANK")  # what Lightning reads, in its order


def process_rank() -> int:
    """This process's rank: the process group's once it exists, before that the launcher's environment."""
    dist = sys.modules.get("torch.distributed")  # not imported here: photo-rendering workers never need torch
    if dist is not None and dist.is_available() and dist.is_initialized():
        return dist.get_rank()
    return next((int(os.environ[name]) for name in _RANK_VARIABLES if os.environ.get(name, "").isdigit()), 0)


def progress(iterable: Iterable[T], desc: str, total: int | None = None, unit: str = "it") -> Iterable[T]:
    """`iterable` with a tqdm bar on stderr: on rank 0 only, not when stderr is not a terminal (tqdm's
    `disable=None`), and only once the step has run for DELAY_S seconds."""
    quiet = True if process_rank() != 0 else None
    return tqdm(iterable, desc=desc, total=total, unit=unit, disable=quiet, delay=DELAY_S, leave=False,
                dynamic_ncols=True)  # fmt: skip
