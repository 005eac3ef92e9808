"""The sampler's property sweep, run long: random sampler calls, every property checked.

    OMP_NUM_THREADS=1 python benchmarks/sampler_fuzz.py --calls 3000 --seed 0

The calls and the checks are ``tests/sampling/sampler_properties.py``, the same ones
``tests/sampling/test_fuzz.py`` runs for 200 calls in CI: random batch sizes, ragged prompts,
policies, schedules, steps, blocks, block starts, thresholds and factors, caches, pinned tokens,
temperatures, EOS penalty and stopping, reference rng modes and seeds on tiny float64 models;
for each call no mask left, prompt and pinned tokens kept, padding after an ending EOS, the
same canvas under the same seed, ``stream`` ending on ``generate``'s region, and, for
deterministic settings, every row equal to itself run alone. Prints the calls run, the
properties checked, the violations (there must be none; the first few are shown with the call
that broke them, enough to replay it) and the wall time. Exits with status 1 on a violation.
"""

from __future__ import annotations

import argparse
import platform
import sys
from collections import Counter
from pathlib import Path

import torch
from provenance import git_commit

# the module itself (``benchmarks/sampling.py`` would shadow the tests' ``sampling`` folder)
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "sampling"))
from sampler_properties import PROPERTIES, run_fuzz  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=3000, help="sampler calls to draw")
    parser.add_argument("--seed", type=int, default=0, help="seed of the draws")
    parser.add_argument("--show", type=int, default=5, help="violations to print in full")
    args = parser.parse_args(argv)

    summary = run_fuzz(args.calls, args.seed)
    by_property = Counter(v.split(":", 1)[0] for v in summary.violations)
    print(
        f"commit {git_commit()}  torch {torch.__version__}  {platform.machine()}  "
        f"threads {torch.get_num_threads()}"
    )
    print(f"calls run:          {summary.calls} (seed {args.seed})")
    print(f"properties checked: {summary.checked}")
    print(f"violations:         {len(summary.violations)}")
    per_call = summary.seconds / max(summary.calls, 1) * 1e3
    print(f"wall time:          {summary.seconds:.1f} s ({per_call:.0f} ms per call)")
    counts = ", ".join(f"{p} {by_property.get(p, 0)}" for p in PROPERTIES)
    print(f"violations by property: {counts}")
    print("calls drawn: " + ", ".join(f"{k} {v}" for k, v in sorted(summary.features.items())))
    print("outputs seen: " + ", ".join(f"{k} {v}" for k, v in sorted(summary.found.items())))
    for violation in summary.violations[: args.show]:
        print("VIOLATION", violation)
    return 1 if summary.violations else 0


if __name__ == "__main__":
    sys.exit(main())
