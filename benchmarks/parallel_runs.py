"""Run a benchmark's worker processes a few at a time and summarise their rows.

Each run is a process of its own (``python SCRIPT --worker ...``) with ``OMP_NUM_THREADS=1``,
so runs side by side do not oversubscribe the cores and each one's memory is its own; the
worker prints its row as the last line of its output (JSON).
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
from collections.abc import Sequence


def launch(script: str, arguments: Sequence[str]) -> subprocess.Popen:
    """``python script arguments`` on one core, its output piped back."""
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.Popen(
        [sys.executable, script, *arguments],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        env=env,
        text=True,
    )


def run_all(jobs: Sequence[tuple[str, int]], start, parallel: int) -> list[dict]:
    """Run ``start(name, seed) -> Popen`` for every job, ``parallel`` at a time, in order;
    the rows the workers printed. A failed run stops the benchmark with its name."""
    queue = list(jobs)
    running: list[tuple[subprocess.Popen, str, int]] = []
    rows = []
    while queue or running:
        while queue and len(running) < parallel:
            name, seed = queue.pop(0)
            running.append((start(name, seed), name, seed))
        proc, name, seed = running.pop(0)
        stdout, _ = proc.communicate()
        if proc.returncode != 0:
            sys.exit(f"run {name} seed {seed} failed (exit {proc.returncode})")
        rows.append(json.loads(stdout.strip().splitlines()[-1]))
        print(f"done {name} seed {seed}", file=sys.stderr)
    return rows


def spread(values: Sequence[float], fmt: str) -> str:
    """``median (min-max)`` of ``values`` in ``fmt``; ``-`` for none."""
    if not values:
        return "-"
    middle, low, high = statistics.median(values), min(values), max(values)
    return f"{format(middle, fmt)} ({format(low, fmt)}-{format(high, fmt)})"
