"""Held-out accuracy along training, for a wall-clock budget: the paper-scale runs on a lent GPU.

    python benchmarks/accuracy_curve.py recipes/sudoku/paper.yaml --minutes 8 --every 1000 \
        --sampler '{"policy": "remask", "steps": 20}'
    python benchmarks/accuracy_curve.py recipes/path/diffusion.yaml --every 500 --set model.arch=gpt2

Trains the recipe (its overrides after ``--set``) and, every ``--every`` optimizer steps, scores
``--n-eval`` held-out examples of its task with the task's verifier. Training stops at the
recipe's ``optim.max_steps`` or when ``--minutes`` of training have passed, whichever is first
(the learning-rate schedule is the recipe's, so a cut run is cut mid-schedule, as MGDM's
generation-based evaluation every 100 steps sees it). Prints one JSON line per evaluation,
then a markdown table: step, training seconds, tokens seen, masked CE at that step, accuracy and
per-bucket accuracy. An AR recipe decodes greedily whatever ``--sampler`` says.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import json
import platform
import time

import torch
from provenance import git_commit

from dlm.evaluation import evaluate_task
from dlm.tasks import get_task
from dlm.training import Trainer, build_model, load_train_config, prepare_data


class BudgetSpent(Exception):
    """Raised by the callback to leave the training loop when the time budget is spent."""


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("recipe")
    parser.add_argument("--every", type=int, default=1000, help="evaluate every N steps")
    parser.add_argument("--minutes", type=float, default=None, help="training time budget")
    parser.add_argument("--n-eval", type=int, default=256)
    parser.add_argument("--sampler", default='{"policy": "confidence"}', help="JSON options")
    parser.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE")
    parser.add_argument("--output-dir", default=None)
    args = parser.parse_args()
    if args.every < 1:
        parser.error("--every must be at least 1")
    sampler = json.loads(args.sampler)
    overrides = [*args.set, f"data.n_eval={args.n_eval}", "progress=false"]
    if args.output_dir:
        overrides.append(f"output_dir={args.output_dir}")
    config = load_train_config(args.recipe, overrides)
    config.log_every = args.every
    if config.data.task is None:
        parser.error(f"{args.recipe} trains on no task (data.task is unset); pick a task recipe")
    prepared = prepare_data(config)
    task = get_task(config.data.task, **config.data.task_options)
    trainer = Trainer(
        config, build_model(config, prepared.tokenizer), prepared.tokenizer, prepared.train
    )
    tokens_per_step = config.optim.batch_size * config.optim.grad_accum * prepared.train.seq_len
    rows: list[dict] = []
    started = time.perf_counter()
    evaluating = 0.0

    def evaluate(step: int, logged: dict) -> None:
        nonlocal evaluating
        model = trainer.unwrapped
        train_s = time.perf_counter() - started - evaluating
        begin = time.perf_counter()
        model.eval()
        with torch.no_grad():
            report = evaluate_task(
                model,
                prepared.tokenizer,
                task,
                prepared.eval_examples,
                max_new_tokens=task.max_answer_tokens,
                **({} if model.is_autoregressive else sampler),
            )
        model.train()
        evaluating += time.perf_counter() - begin
        row = {
            "step": step,
            "train_s": round(train_s, 1),
            "tokens": step * tokens_per_step,
            "ce": logged.get("ce"),
            "accuracy": report.accuracy,
            "buckets": {k: v["accuracy"] for k, v in report.to_json()["buckets"].items()},
        }
        rows.append(row)
        print(json.dumps(row), flush=True)
        if args.minutes is not None and train_s > 60 * args.minutes:
            raise BudgetSpent

    trainer.callbacks.append(evaluate)
    with contextlib.suppress(BudgetSpent):
        trainer.fit()
    device = torch.cuda.get_device_name() if torch.cuda.is_available() else platform.processor()
    print(
        f"\n### Accuracy curve: {args.recipe} — {datetime.date.today()} — commit {git_commit()}\n\n"
        f"Command: `python benchmarks/accuracy_curve.py {args.recipe} --every {args.every}"
        f"{f' --minutes {args.minutes}' if args.minutes else ''} --n-eval {args.n_eval}"
        f" --sampler '{args.sampler}'{' --set ' + ' '.join(args.set) if args.set else ''}`; "
        f"{device or platform.machine()}, torch {torch.__version__}\n"
    )
    print("| step | train s | tokens | masked CE | accuracy | per bucket |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        buckets = ", ".join(f"{k} {v:.0%}" for k, v in r["buckets"].items())
        ce = "" if r["ce"] is None else f"{r['ce']:.3f}"
        print(
            f"| {r['step']} | {r['train_s']:.0f} | {r['tokens']:,} | {ce} | {r['accuracy']:.1%} | {buckets} |"
        )


if __name__ == "__main__":
    main()
