"""The few facts about the process group that demandnet needs, and checks that the ranks agree."""

from __future__ import annotations

import ctypes
import os
import signal
import sys

import torch

_PR_SET_PDEATHSIG = 1


def world() -> tuple[int, int]:
    """(world size, rank); (1, 0) outside DDP."""
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return torch.distributed.get_world_size(), torch.distributed.get_rank()
    return 1, 0


def eval_share(rows: int) -> tuple[range, bool]:
    """This process's rows of an evaluation pass (every world-th, as Lightning's UnrepeatedDistributedSampler
    deals them: no row twice) and whether the share is a stand-in: with fewer rows than processes, a process
    without rows runs row 0 so that every process takes part in the pass, and its outputs must be dropped."""
    size, rank = world()
    share = range(rank, rows, size)
    if len(share) or not rows:
        return share, False
    return range(1), True


def die_with_launcher() -> None:
    """In a DDP process that Lightning (or torchrun) started, ask Linux to kill this process when its parent
    dies: a launcher killed with SIGKILL otherwise leaves the other ranks running on as orphans."""
    # Lightning's launcher is local rank 0 itself; torchrun's agent is the parent of every rank, local rank 0 too
    launched = os.environ.get("LOCAL_RANK", "0") != "0" or "TORCHELASTIC_RUN_ID" in os.environ
    if not launched or not sys.platform.startswith("linux"):
        return
    try:
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    except (OSError, AttributeError):  # no prctl here: the ranks then end when their collectives fail
        return
    if os.getppid() == 1:  # the parent died before prctl took effect
        os.kill(os.getpid(), signal.SIGKILL)


def gather(value: object) -> list:
    """Every rank's `value` (a picklable object), in rank order, on every rank; [value] outside DDP."""
    size, _ = world()
    if size == 1:
        return [value]
    values: list = [None] * size
    torch.distributed.all_gather_object(values, value)
    return values


def check_same_on_every_rank(value: object, what: str) -> None:
    """Raise on every rank unless all ranks hold an equal `value`."""
    values = gather(value)
    size, rank = world()
    if any(v != values[0] for v in values):
        raise RuntimeError(f"the {size} processes disagree on {what}: {values} (this is rank {rank})")


def processes_asked(trainer_cfg: dict) -> int:
    """How many training processes a Trainer config asks for on this node: an int, a device list, or 'auto'."""
    devices = trainer_cfg.get("devices", 1)
    if isinstance(devices, (list, tuple)):
        return len(devices)
    if isinstance(devices, str) and devices.strip().lstrip("-").isdigit():
        devices = int(devices)
    if devices in ("auto", -1):
        return max(1, torch.cuda.device_count())
    if isinstance(devices, str):  # "0,1" as a string of device ids
        return len([d for d in devices.split(",") if d.strip()])
    return int(devices)
