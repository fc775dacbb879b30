"""Train demandnet: `python train.py [hydra overrides]`; see README.md and conf/train.yaml."""

import hydra
from omegaconf import DictConfig


@hydra.main(version_base="1.3", config_path="conf", config_name="train")
def main(cfg: DictConfig) -> float:
    from demandnet.distributed import die_with_launcher
    from demandnet.train import run  # imported here so `--help` and config errors come back fast

    die_with_launcher()
    return run(cfg)


if __name__ == "__main__":
    import sys

    from demandnet.multinode import rank_overrides

    sys.argv += rank_overrides(sys.argv)  # torchrun/srun ranks > 0 keep out of .hydra/, as Lightning's DDP children do
    main()
