"""Several machines: one train.py process per device, started by torchrun or SLURM's srun on every node.

Lightning starts the other processes of a one-node DDP run itself and gives them their hydra settings; under
torchrun or srun every process runs train.py with the same command line, so two things are done here instead:
the processes other than global rank 0 keep out of the run directory's `.hydra/` and log to a file of their own, and
a multi-node run must name its run directory (the default one holds the launch time, which differs per node).
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig


def launcher_rank(environ: Mapping[str, str] = os.environ) -> int | None:
    """The global rank that torchrun (RANK) or srun with several tasks (SLURM_PROCID) gave this process, before
    any process group exists; None when neither started it (a plain run, or Lightning's own DDP launcher)."""
    if "TORCHELASTIC_RUN_ID" in environ and "RANK" in environ:
        return int(environ["RANK"])
    if int(environ.get("SLURM_NTASKS", "1")) > 1 and "SLURM_PROCID" in environ:
        return int(environ["SLURM_PROCID"])
    return None


def rank_overrides(argv: list[str], environ: Mapping[str, str] = os.environ) -> list[str]:
    """Hydra overrides for a process that torchrun or srun started as global rank > 0: like Lightning's own DDP
    children, it writes no `.hydra/` (rank 0 does) and logs to `train_ddp_process_<rank>.log` in the run dir."""
    rank = launcher_rank(environ)
    if not rank or any(a.startswith(("hydra.output_subdir=", "hydra.job.name=")) for a in argv):
        return []
    return ["hydra.output_subdir=null", f"hydra.job.name=train_ddp_process_{rank}"]


def refuse_a_per_node_run_dir(cfg: DictConfig) -> None:
    """Each node resolves the default run directory (the launch time, to the microsecond) on its own clock: the
    nodes of one run would write to different directories. A multi-node run names its own."""
    if int(cfg.trainer.get("num_nodes", 1)) <= 1:
        return
    if not any(o.startswith("hydra.run.dir=") for o in HydraConfig.get().overrides.hydra):
        raise SystemExit(
            "demandnet: trainer.num_nodes > 1 needs hydra.run.dir=DIR, the same on every node and on a filesystem "
            "that every node sees (the checkpoints written by rank 0 are read back by every process)"
        )
