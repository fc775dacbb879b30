"""`python -m demandnet.report RUN_DIR`: rebuild RUN_DIR/report/ from the files the run left."""

from __future__ import annotations

import argparse
import logging
import sys

from demandnet.report.build import NotARunDir, build_report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m demandnet.report", description=__doc__)
    parser.add_argument("run_dir", help="a run directory of `python train.py` (holds metrics.json, .hydra/, csv/)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        page = build_report(args.run_dir)
    except NotARunDir as e:
        print(f"demandnet.report: {e}", file=sys.stderr)
        return 2
    print(page)
    return 0


if __name__ == "__main__":
    sys.exit(main())
