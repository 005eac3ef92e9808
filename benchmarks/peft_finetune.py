"""Full fine-tuning, LoRA and PRoLoRA (with the paper's ablations) side by side, three seeds each.

    dlm train recipes/peft/base.yaml                       # the base: 2-digit sums (once)
    python benchmarks/peft_finetune.py --base runs/peft-base/model [--seeds 0 1 2] [--parallel 2]

The base (``recipes/peft/base.yaml``) fills pages of 4 sums of 2-digit numbers; every run here
moves it to pages of 10 sums (``recipes/peft/full.yaml`` and the recipes laid over it), the same
data, steps and batch for every method:

* ``full``: every weight trains (lr 5e-4);
* ``lora``: LoRA r = 8 through Hugging Face peft on the 7 projections of each block (lr 4e-3);
* ``prolora``: PRoLoRA r = 10, u = 2, m = n = 4, rotated, rectified init: half of LoRA's
  trainable parameters (lr 4e-3);
* the ablations at the same half budget: ``no-rotation`` (rotation off), ``no-unshared``
  (u = 0: r = 16, m = n = 4, every rank shared) and ``naive-init`` (A's bound from the chunk).

Each run is a separate process with ``OMP_NUM_THREADS=1`` (``--parallel`` at a time), so its
peak resident memory (``ru_maxrss``) is its own. Reported per run: the share of the 256 held-out
pages' sums right (``sum_accuracy``, confidence decoding with one token per step), pages all
right (``verify``), the held-out loss at the last step, trainable parameters, seconds per step
and peak memory; then per method the median and the spread (min - max) over the seeds.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import resource
import sys
import time
from pathlib import Path

from parallel_runs import launch, run_all, spread

ROOT = Path(__file__).resolve().parents[1]
PROLORA = "recipes/peft/prolora.yaml"
METHODS = {
    "full": ("recipes/peft/full.yaml", []),
    "lora": ("recipes/peft/lora.yaml", []),
    "prolora": (PROLORA, []),
    "no-rotation": (PROLORA, ["peft.rotation=false"]),
    "no-unshared": (PROLORA, ["peft.r=16", "peft.u=0"]),
    "naive-init": (PROLORA, ["peft.init=naive"]),
}


def worker(
    method: str, seed: int, base: str, out: str, steps: int | None, extra_overrides: list[str]
) -> dict:
    """Train one method with one seed, evaluate it, return its row (runs in its own process)."""
    import torch

    from dlm.checkpoints import load_model
    from dlm.evaluation import evaluate_task
    from dlm.training import load_train_config, train

    recipe, extra = METHODS[method]
    overrides = [*extra, *extra_overrides, f"model.init={base}", f"seed={seed}", f"output_dir={out}"]
    overrides += ["progress=false"] + ([f"optim.max_steps={steps}", f"eval_every={steps}"] if steps else [])
    config = load_train_config(str(ROOT / recipe), overrides)
    result, prepared = train(config)
    model = load_model(result.model_dir).eval()
    trainable = sum(
        p.numel() for n, p in model.named_parameters() if "lora_" in n
    ) if config.peft else sum(p.numel() for p in model.parameters())
    task = prepared.task
    with torch.no_grad():
        report = evaluate_task(
            model,
            prepared.tokenizer,
            task,
            prepared.eval_examples,
            max_new_tokens=task.max_answer_tokens,
            batch_size=64,
            metrics=["verify", "sum_accuracy"],
            policy="confidence",
            seed=0,
        )
    loss = result.evals[-1][1].get("loss") if result.evals else None
    return {
        "method": method,
        "seed": seed,
        "sum_accuracy": report.metrics["sum_accuracy"],
        "verify": report.metrics["verify"],
        "heldout_loss": loss,
        "trainable": trainable,
        "seconds_per_step": result.train_seconds / max(result.steps, 1),
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "steps": result.steps,
    }


def _launch(method: str, seed: int, args: argparse.Namespace):
    out = Path(args.out) / f"{method}-s{seed}"
    argv = ["--worker", method, str(seed), "--base", args.base, "--out", str(out)]
    argv += (["--steps", str(args.steps)] if args.steps else []) + [f"--set={o}" for o in args.set]
    return launch(__file__, argv)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", default="runs/peft-base/model", help="the trained base model")
    parser.add_argument("--methods", nargs="+", choices=list(METHODS), default=list(METHODS))
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--steps", type=int, help="override the recipes' 60 steps")
    parser.add_argument("--parallel", type=int, default=2, help="runs at a time (one core each)")
    parser.add_argument("--out", default="runs/peft-bench")
    parser.add_argument("--json", help="also write the rows as JSON")
    parser.add_argument(
        "--set", action="append", default=[], metavar="KEY=VALUE",
        help="a recipe override for every run, e.g. optim.lr=0.004 (repeatable)",
    )
    parser.add_argument("--worker", nargs=2, metavar=("METHOD", "SEED"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        row = worker(args.worker[0], int(args.worker[1]), args.base, args.out, args.steps, args.set)
        print(json.dumps(row))
        return
    if not Path(args.base).is_dir():
        sys.exit(f"--base {args.base} is not a folder: train it first (dlm train recipes/peft/base.yaml)")
    started = time.perf_counter()
    jobs = [(m, s) for s in args.seeds for m in args.methods]
    rows = run_all(jobs, lambda m, s: _launch(m, s, args), args.parallel)
    print(
        f"# {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
        f"{args.parallel} runs at a time, OMP_NUM_THREADS=1 each; {datetime.date.today()}; "
        f"{time.perf_counter() - started:.0f} s in all; seeds {args.seeds}; overrides {args.set}\n"
    )
    print("| method | trainable | sums right | pages right | held-out loss | s/step | peak RSS MB |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for method in args.methods:
        mine = [r for r in rows if r["method"] == method]
        loss = [r["heldout_loss"] for r in mine if r["heldout_loss"] is not None]
        print(
            f"| {method} | {mine[0]['trainable']:,} | {spread([r['sum_accuracy'] for r in mine], '.3f')} "
            f"| {spread([r['verify'] for r in mine], '.3f')} | {spread(loss, '.4f') if loss else '-'} "
            f"| {spread([r['seconds_per_step'] for r in mine], '.3f')} "
            f"| {spread([r['peak_rss_mb'] for r in mine], '.0f')} |"
        )
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1) + "\n")


if __name__ == "__main__":
    main()
