"""The shared front of the `key=value` command lines (predict, export, serving): help, config, missing keys."""

from __future__ import annotations

import logging
import sys

from omegaconf import DictConfig, OmegaConf


def parse_args(schema: type, argv: list[str] | None, doc: str, prog: str) -> DictConfig | None:
    """`argv` (default sys.argv[1:]) as dotlist overrides of the dataclass `schema`; None after printing `doc` for
    -h/--help; exits naming every required (`???`) key left unset."""
    logging.basicConfig(level=logging.INFO, format="[%(asctime)s][%(name)s][%(levelname)s] - %(message)s")
    args = sys.argv[1:] if argv is None else argv
    if any(a in ("-h", "--help") for a in args):
        print(doc)
        return None
    cfg = OmegaConf.merge(OmegaConf.structured(schema), OmegaConf.from_dotlist(args))
    missing = [key for key in cfg if OmegaConf.is_missing(cfg, key)]
    if missing:
        sys.exit(f"{prog}: missing {', '.join(f'{k}=...' for k in missing)}\n{doc}")
    return cfg
