"""Run every benchmark, print a table of the figures against their goals, write benchmarks/results/latest.json.

    python benchmarks/run.py            # full sizes (1.5M rows, 8,000 and 20,000-row accuracy): about an hour here
    python benchmarks/run.py --quick    # smaller sizes, a few minutes on 2 CPU cores
    python benchmarks/run.py --only pipeline image_decode
    python benchmarks/run.py --markdown benchmarks/results/latest.json   # the table of a past run, for the README

Each benchmark runs in its own process (thread settings and peak memory stay its own) and measures its figures
side by side in that one run, as ratios and medians of repeats.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BENCHMARKS = ["image_decode", "pipeline", "frozen_cache", "predict_speed", "scale", "accuracy"]
# figure -> (goal, test)
GOALS = {
    "pipeline_efficiency": (">= 0.85", lambda v: v >= 0.85),
    "pipeline_efficiency_decoding": (">= 0.85", lambda v: v >= 0.85),
    "image_decode_speedup": (">= 2 at 128 px", lambda v: v >= 2),
    "image_decode_min_speedup": (">= 1 at every size", lambda v: v >= 1),
    "frozen_cache_epoch_speedup": (">= 10", lambda v: v >= 10),
    "frozen_cache_max_abs_prediction_diff": ("<= 1e-5", lambda v: v <= 1e-5),
    "scale_prep_seconds": ("<= 180 s at 1.5M rows", lambda v: v <= 180),
    "scale_peak_rss_gb": ("<= 6 GB at 1.5M rows", lambda v: v <= 6),
    "scale_worker_rss_mb_growth": ("must not grow (<= 10 MB)", lambda v: v <= 10),
    "gap_to_noise_floor": ("<= 5% at 20,000 rows", lambda v: v <= 0.05),
}


def _run_one(name: str, quick: bool) -> dict:
    with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as f:
        out = f.name
    code = (f"import json; from benchmarks import {name}; "
            f"json.dump({name}.measure(quick={quick}), open({out!r}, 'w'))")  # fmt: skip
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", code], check=False, cwd=ROOT, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        return {"error": done.stderr[-3000:], "seconds": seconds}
    result = json.loads(Path(out).read_text())
    os.unlink(out)
    return {**result, "seconds": seconds}


def _flat(results: dict) -> dict[str, object]:
    """Figures at any depth, named by their last key and, for nested accuracy blocks, the block."""
    flat: dict[str, object] = {}
    for key, value in results.items():
        if isinstance(value, dict) and key.startswith("accuracy_"):
            flat.update({f"{k} [{key.removeprefix('accuracy_')}]": v for k, v in value.items()})
        elif isinstance(value, (int, float)):
            flat[key] = value
    return flat


def _verdict(name: str, value: object, results: dict) -> tuple[str, str]:
    base = name.split(" [")[0]
    if base in GOALS and isinstance(value, (int, float)):
        goal, test = GOALS[base]
        if base == "gap_to_noise_floor" and "[20000]" not in name:
            return goal, "-"
        if (
            base in ("scale_prep_seconds", "scale_peak_rss_gb")
            and results.get("scale", {}).get("scale_rows", 0) < 1_500_000
        ):
            return goal, "(not at 1.5M rows)"
        return goal, "met" if test(value) else "NOT met"
    if base.endswith("_rmse_increase"):
        return "> 0 (the branch adds accuracy)", "met" if value > 0 else "NOT met"
    if base == "rmse_demandnet" and "[" in name:
        block = name.split(" [")[1].rstrip("]")
        lgbm = results.get("accuracy", {}).get(f"accuracy_{block}", {}).get("rmse_lightgbm")
        if lgbm is not None:
            return f"< LightGBM ({lgbm:.4f})", "met" if value < lgbm else "NOT met"
    return "", ""


def _rows(results: dict) -> list[tuple[str, str, str, str]]:
    """(figure, value, goal, verdict) of every figure of every benchmark in `results`."""
    rows = []
    for name in (n for n in BENCHMARKS if isinstance(results.get(n), dict)):
        for figure, value in _flat(results[name]).items():
            if figure != "seconds":
                shown = f"{value:.4g}" if isinstance(value, float) else str(value)
                rows.append((figure, shown, *_verdict(figure, value, results)))
    return rows


def markdown(results: dict) -> str:
    lines = ["| figure | value | goal | verdict |", "|---|---|---|---|"]
    lines += [f"| `{figure}` | {value} | {goal} | {verdict} |" for figure, value, goal, verdict in _rows(results)]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--only", nargs="+", choices=BENCHMARKS, default=BENCHMARKS)
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "latest.json"))
    parser.add_argument("--markdown", metavar="JSON", help="print the table of a results file as markdown and exit")
    args = parser.parse_args()
    if args.markdown:
        print(markdown(json.loads(Path(args.markdown).read_text())))
        return
    import torch

    results: dict = {"quick": args.quick, "started": time.strftime("%Y-%m-%d %H:%M:%S"),
                     "command": " ".join(["python benchmarks/run.py", *sys.argv[1:]]),
                     "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                                 "torch": torch.__version__, "cuda": torch.cuda.is_available()}}  # fmt: skip
    for name in args.only:
        print(f"running {name} ...", flush=True)
        results[name] = _run_one(name, args.quick)
        if "error" in results[name]:
            print(f"  {name} FAILED:\n{results[name]['error']}", flush=True)
        else:
            print(f"  {name}: {results[name]['seconds']:.0f} s", flush=True)
    print(f"\n{'figure':<48} {'value':>12}  {'goal':<32} verdict")
    for figure, shown, goal, verdict in _rows(results):
        print(f"{figure:<48} {shown:>12}  {goal:<32} {verdict}")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".tmp")
    tmp.write_text(json.dumps(results, indent=2) + "\n")
    os.replace(tmp, out)
    print(f"\nwrote {out}")


if __name__ == "__main__":
    main()
