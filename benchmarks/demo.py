"""Measure `dlm demo`: accuracy, time and the AR baseline, printed as a RESULTS.md entry.

    python benchmarks/demo.py [--compare-ar] [--seeds 0 1 2]

Each seed changes the data and the initialisation (data.seed, seed). The whole wall time of
each run (data generation, training, evaluation, display) is what the 5-minute bar refers to.
"""

from __future__ import annotations

import argparse
import datetime
import platform
import statistics
import time

import torch
from provenance import git_commit

from dlm.demo import run_demo


def hardware() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as info:
            names = [
                line.split(":", 1)[1].strip() for line in info if line.startswith("model name")
            ]
        cpu = names[0] if names else cpu
    except OSError:
        pass
    return f"{cpu}, {torch.get_num_threads()} torch threads, torch {torch.__version__}"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--compare-ar", action="store_true")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    args = parser.parse_args()
    commit = git_commit()
    rows = []
    for seed in args.seeds:
        start = time.perf_counter()
        result = run_demo(compare_ar=args.compare_ar, overrides={"data.seed": seed, "seed": seed})
        rows.append((seed, result, time.perf_counter() - start))
    print(f"\n### dlm demo — {datetime.date.today()} — commit {commit}\n")
    print(f"Hardware: {hardware()}\n")
    print(
        f"Command: `python benchmarks/demo.py {'--compare-ar ' if args.compare_ar else ''}--seeds {' '.join(map(str, args.seeds))}`\n"
    )
    print("| seed | diffusion accuracy | n_eval | train s | total s (demo wall) | AR accuracy |")
    print("|---|---|---|---|---|---|")
    for seed, r, _wall in rows:
        ar = "–" if r.ar_accuracy is None else f"{r.ar_accuracy:.1%}"
        print(
            f"| {seed} | {r.accuracy:.1%} | {r.n_eval} | {r.train_seconds:.0f} | {r.total_seconds:.0f} | {ar} |"
        )
    if len(rows) > 1:
        print(
            f"\nMedian accuracy {statistics.median(r.accuracy for _, r, _ in rows):.1%}, "
            f"median total {statistics.median(r.total_seconds for _, r, _ in rows):.0f}s"
        )


if __name__ == "__main__":
    main()
