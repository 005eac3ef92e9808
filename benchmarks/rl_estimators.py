"""GRPO with each log-likelihood estimator from one SFT start, side by side, several seeds.

    dlm train recipes/rl/sft.yaml                                   # the SFT start (once)
    python benchmarks/rl_estimators.py --base runs/rl-sft/model [--seeds 0 1 2] [--parallel 2]

Every run starts from the same SFT model and makes the same number of rollouts (the recipe's
``optim.max_steps`` x ``optim.batch_size`` prompts x ``rl.group_size``, over
``rl.inner_steps`` updates each) with ``recipes/rl/grpo.yaml``, changing only
``rl.estimator``:

* ``coupled``: DiffuCoder's coupled masks (dlm's unbiased average);
* ``one_step``: d1's fully masked completion, 15% of the prompt masked;
* ``weighted``: wd1's ratio-free weighted log-likelihood;
* ``sft``: the control: the same number of steps of the SFT objective on the task's gold
  answers from the same start (does RL beat simply training on longer?).

Held-out accuracy is the task's strict verifier on the recipe's held-out examples, sampled with
the model's saved (greedy) settings; the start is evaluated once the same way. Reported per
run: held-out accuracy, the mean reward of the first and last tenth of the steps, rollouts per
second; per estimator the median and spread over seeds. Each run is a process of its own with
``OMP_NUM_THREADS=1`` (``--parallel`` at a time). ``--json`` keeps the rows and the reward curves.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

from parallel_runs import launch, run_all, spread
from provenance import git_commit

ROOT = Path(__file__).resolve().parents[1]
RECIPE = "recipes/rl/grpo.yaml"
METHODS = ("coupled", "one_step", "weighted", "sft")


def _accuracy(model_dir: Path | str, prepared, batch_size: int = 64) -> float:
    import torch

    from dlm.checkpoints import load_model
    from dlm.evaluation import evaluate_task

    model = load_model(model_dir).eval()
    task = prepared.task
    with torch.no_grad():
        report = evaluate_task(
            model,
            prepared.tokenizer,
            task,
            prepared.eval_examples,
            max_new_tokens=task.max_answer_tokens,
            batch_size=batch_size,
        )
    return report.metrics["verify"]


def worker(method: str, seed: int, args: argparse.Namespace) -> dict:
    """One run (its own process): train, evaluate, return its row."""
    from dlm.training import load_train_config, prepare_data, train

    out = Path(args.out) / f"{method}-s{seed}"
    overrides = [f"model.init={args.base}", f"seed={seed}", f"output_dir={out}", "progress=false"]
    overrides += ["log_every=1", *args.set]
    if args.steps:
        overrides.append(f"optim.max_steps={args.steps}")
    if method == "start":
        config = load_train_config(str(ROOT / RECIPE), overrides)
        return {
            "method": "start",
            "seed": seed,
            "accuracy": _accuracy(args.base, prepare_data(config)),
        }
    if method == "sft":
        overrides += ["objective=sft", "rl.inner_steps=1"]
    else:
        overrides.append(f"rl.estimator={method}")
    config = load_train_config(str(ROOT / RECIPE), overrides)
    curve: list[dict] = []
    result, prepared = train(config, callbacks=[lambda step, m: curve.append({"step": step, **m})])
    rewards = [c["reward"] for c in curve if "reward" in c]
    tenth = max(len(rewards) // 10, 1)
    return {
        "method": method,
        "seed": seed,
        "accuracy": _accuracy(result.model_dir, prepared),
        "reward_first": statistics.mean(rewards[:tenth]) if rewards else None,
        "reward_last": statistics.mean(rewards[-tenth:]) if rewards else None,
        "rollouts_per_s": statistics.median(c["rollouts_per_s"] for c in curve)
        if rewards
        else None,
        "seconds": result.train_seconds,
        "steps": result.steps,
        "curve": [
            {k: c[k] for k in ("step", "loss", "reward", "pass_rate", "clip_fraction") if k in c}
            for c in curve
        ],
    }


def _launch(method: str, seed: int, args: argparse.Namespace):
    argv = ["--worker", method, str(seed), "--base", args.base, "--out", args.out]
    argv += (["--steps", str(args.steps)] if args.steps else []) + [f"--set={o}" for o in args.set]
    return launch(__file__, argv)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", default="runs/rl-sft/model", help="the SFT start")
    parser.add_argument("--methods", nargs="+", choices=METHODS, default=list(METHODS))
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--steps", type=int, help="override the recipe's optim.max_steps")
    parser.add_argument("--parallel", type=int, default=2, help="runs at a time (one core each)")
    parser.add_argument("--out", default="runs/rl-bench")
    parser.add_argument("--json", help="also write the rows (with reward curves) as JSON")
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a recipe override for every run, e.g. rl.group_size=16 (repeatable)",
    )
    parser.add_argument("--worker", nargs=2, metavar=("METHOD", "SEED"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(worker(args.worker[0], int(args.worker[1]), args)))
        return
    if not Path(args.base).is_dir():
        sys.exit(
            f"--base {args.base} is not a folder: train it first (dlm train recipes/rl/sft.yaml)"
        )
    started = time.perf_counter()
    jobs = [("start", 0)] + [(m, s) for s in args.seeds for m in args.methods]
    rows = run_all(jobs, lambda m, s: _launch(m, s, args), args.parallel)
    start = next(r["accuracy"] for r in rows if r["method"] == "start")
    print(
        f"# {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
        f"{args.parallel} runs at a time, OMP_NUM_THREADS=1 each; {datetime.date.today()}; "
        f"{time.perf_counter() - started:.0f} s in all; commit {git_commit()}; seeds {args.seeds}; "
        f"overrides {args.set}\n"
    )
    print(f"SFT start: held-out accuracy {start:.3f}\n")
    print(
        "| method | held-out accuracy | gain | reward first 10% | reward last 10% | rollouts/s | s/run |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|")
    for method in args.methods:
        mine = [r for r in rows if r["method"] == method]
        acc = [r["accuracy"] for r in mine]
        first = [r["reward_first"] for r in mine if r["reward_first"] is not None]
        last = [r["reward_last"] for r in mine if r["reward_last"] is not None]
        speed = [r["rollouts_per_s"] for r in mine if r["rollouts_per_s"] is not None]
        print(
            f"| {method} | {spread(acc, '.3f')} | {spread([a - start for a in acc], '+.3f')} "
            f"| {spread(first, '.3f')} | {spread(last, '.3f')} | {spread(speed, '.0f')} "
            f"| {spread([r['seconds'] for r in mine], '.0f')} |"
        )
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1) + "\n")


if __name__ == "__main__":
    main()
