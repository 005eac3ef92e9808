"""What a SAT model must beat: answers that read no clause structure, on the recipes' test splits.

    python benchmarks/sat_baselines.py                  # recipes/sat/n5.yaml and n7.yaml
    python benchmarks/sat_baselines.py recipes/sat/n7.yaml

For each recipe's held-out formulas (the same ones ``benchmarks/reasoning.py`` evaluates on),
prints the share that the task's verifier accepts for:

- polarity majority: each variable set to the sign it carries most often in the formula
  (positive on a tie), a count any model can learn without searching;
- the best fixed assignment: the one assignment of n bits that satisfies the most held-out
  formulas (chosen on the test split itself, so an upper bound for a constant answer).

A model that reasons about clauses should be above both.
"""

from __future__ import annotations

import argparse
import itertools

from provenance import git_commit

from dlm.tasks import get_task
from dlm.tasks.sat import SatTask
from dlm.training import load_train_config
from dlm.training.setup import prepare_data


def polarity_majority(prompt: str, variables: int) -> str:
    """The assignment that gives each variable its more frequent sign in ``prompt``."""
    letters = prompt.replace(",", "")
    return "".join(
        "1" if letters.count(chr(ord("a") + i)) >= letters.count(chr(ord("A") + i)) else "0"
        for i in range(variables)
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument(
        "recipes", nargs="*", default=["recipes/sat/n5.yaml", "recipes/sat/n7.yaml"]
    )
    args = parser.parse_args()
    print(f"commit {git_commit()}\n")
    print("| recipe | held out | polarity majority | best fixed assignment |")
    print("|---|---|---|---|")
    for recipe in args.recipes:
        config = load_train_config(recipe, [])
        task = get_task(config.data.task, **config.data.task_options)
        if not isinstance(task, SatTask):
            raise SystemExit(f"{recipe} is not a SAT recipe (its task is {config.data.task!r})")
        examples = prepare_data(config).eval_examples
        n = task.variables
        majority = sum(bool(task.verify(e, polarity_majority(e.prompt, n))) for e in examples)
        fixed = max(
            sum(bool(task.verify(e, "".join(bits))) for e in examples)
            for bits in itertools.product("01", repeat=n)
        )
        total = len(examples)
        print(f"| {recipe} | {total} | {majority / total:.1%} | {fixed / total:.1%} |")


if __name__ == "__main__":
    main()
