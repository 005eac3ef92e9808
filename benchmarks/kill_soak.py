"""Kill soak: SIGKILL a longer training run many times at random, resume it, check nothing broke.

    OMP_NUM_THREADS=1 python benchmarks/kill_soak.py [--kills 100] [--steps 24] [--seed 0]

A tiny Sudoku run (``tests/training/kill_harness.py``'s recipe, with ``--steps`` steps and a
checkpoint every 2, keeping 2) is first run once uninterrupted. Then runs are started and
killed over and over until ``--kills`` kills have happened: each attempt is killed either by
the parent's SIGKILL after a random delay (uniform over the uninterrupted run's duration) or,
one time in three, by a random fault point inside a checkpoint write, swap or delete
(``DLM_FAULT``, see ``dlm.atomic.fault_point``; replacing a folder, covered by
``tests/training/test_kill.py``, does not happen in a plain run); the next attempt resumes with
``resume=latest``. A run that finishes is compared with the uninterrupted one: every loss it
ever logged, its final weights and its last checkpoint's weights must be equal bit for bit,
and no leftover folder may remain. Corruption (any difference, or a resume that fails) must
be 0.
"""

from __future__ import annotations

import argparse
import platform
import random
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "training"))

import kill_harness as kh  # noqa: E402

FAULTS = [
    "train.step",
    "save.state",
    "save.before_manifest",
    "save.complete",
    "replace.swapped",
    "discard.renamed",
    "discard.partial",
    "prune",
]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--kills", type=int, default=100)
    parser.add_argument("--steps", type=int, default=24)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--keep", action="store_true", help="keep the run folders")
    args = parser.parse_args()
    rng = random.Random(args.seed)
    root = Path(tempfile.mkdtemp(prefix="kill_soak_"))
    overrides = [f"optim.max_steps={args.steps}"]
    kh.warm_up()
    started = time.perf_counter()
    t0 = time.perf_counter()
    assert kh.run(root / "reference", [kh.Attempt()], 0, overrides) == ["ok"]
    duration = time.perf_counter() - t0

    kills = resumes = runs = fault_kills = unreached = 0
    finished: list[str] = []
    failures: list[str] = []
    while kills < args.kills:
        name = f"run{runs}"
        runs += 1
        statuses = []
        while not statuses or statuses[-1] == "killed":
            if kills >= args.kills:
                attempt = kh.Attempt()
            elif rng.random() < 1 / 3:
                attempt = kh.Attempt(fault=f"{rng.choice(FAULTS)}@{rng.randint(1, 4)}")
            else:
                attempt = kh.Attempt(kill_after=rng.uniform(0.05, duration))
            statuses.append(kh.attempt(root / name, attempt, overrides))
            if statuses[-1] == "killed":
                kills += 1
                fault_kills += attempt.fault is not None
            elif attempt.fault is not None or attempt.kill_after is not None:
                unreached += 1  # the run finished before the fault point or the delay
            if len(statuses) > 1:
                resumes += 1
            if len(statuses) > 200:
                break
        if statuses[-1] != "ok":
            failures.append(f"{name}: {statuses[-3:]}")
        finished.append(name)

    corrupt = list(failures)
    for name in finished:  # torch runs in this process only from here on
        problems = kh.compare(root / "reference", root / name)
        corrupt += [f"{name}: {p}" for p in problems]
    wall = time.perf_counter() - started
    print(f"platform: {platform.platform()}, {platform.processor() or platform.machine()}")
    print(f"uninterrupted run: {args.steps} steps in {duration:.2f}s")
    print(
        f"runs {runs}, kills {kills} ({fault_kills} at fault points, {kills - fault_kills} at "
        f"random times), {unreached} attempts finished before their kill, resumes {resumes}, "
        f"corrupted runs or failed resumes {len(corrupt)}"
    )
    print(f"wall time {wall:.0f}s")
    for line in corrupt[:20]:
        print("  CORRUPT", line)
    if not args.keep:
        shutil.rmtree(root, ignore_errors=True)
    return 1 if corrupt else 0


if __name__ == "__main__":
    sys.exit(main())
