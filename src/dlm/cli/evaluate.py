"""``dlm eval``: verified accuracy of a checkpoint on a task, per bucket, with its cost.

    dlm eval --model runs/sudoku/model                       # the recipe's own held-out split
    dlm eval --model DIR --task countdown --split cd3 --n 500 [sampler options]
    dlm eval --model DIR --data data/cd3/test.jsonl --task countdown --split cd3
    dlm eval --model DIR --samples 5 --vote --temperature 0.5  # self-consistency
    dlm eval --model DIR --multipass                           # DoT-MP, a thought per pass
    dlm eval --model DIR --metric verify --metric lenient      # the task's metrics by name

Without ``--task`` the task comes from the ``train_config.yaml`` saved with the model, and the
examples are that recipe's held-out split, regenerated from its seed (never seen in training).
With ``--task`` and no ``--data``, examples are generated from ``--seed-data`` (default 1): held
out only from a model whose training data came from another seed.
Prints the accuracy, the accuracy per bucket and the sampler's cost, and writes the report as
JSON with ``--json PATH``; ``--save-examples FILE.jsonl`` writes every example with the
model's answer, its verdict, bucket and metrics, so failures can be looked at. ``--metric NAME`` (repeatable, or a comma list) adds a table of the
task's named metrics (``verify``, the strict check, and each paper metric such as Countdown's
``lenient`` or Sudoku's ``cell_accuracy``) overall and per bucket; an unknown name is an error
that lists the task's metrics. ``--json`` and every flag are checked before the examples are
made and the model loads; the report is written atomically.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from dlm.atomic import atomic_write_text
from dlm.errors import DlmUserError

from .common import (
    add_sampler_options,
    add_task_selection,
    check_output_path,
    check_sampler_flags,
    load_model_and_tokenizer,
    parse_options,
    positive_int,
    sampler_options,
)

__all__ = ["HELP", "add_arguments", "run", "run_eval"]

HELP = (
    "verified task accuracy of a checkpoint, per bucket "
    "(also: dlm eval ppl ..., dlm eval lm-eval ...)"
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", required=True, help="a dlm checkpoint directory")
    parser.add_argument(
        "--task", help="a registered task (default: the one the model was trained on)"
    )
    add_task_selection(parser)
    parser.add_argument(
        "--data", metavar="FILE.jsonl", help="examples to evaluate (from dlm task make)"
    )
    parser.add_argument(
        "--n", type=positive_int, default=None, help="evaluate only the first N examples"
    )
    parser.add_argument(
        "--seed-data",
        type=int,
        default=1,
        help="generator seed when neither a recipe nor --data gives the examples",
    )
    parser.add_argument("--batch-size", type=positive_int, default=128)
    parser.add_argument(
        "--samples", type=positive_int, default=1, help="samples per prompt (self-consistency)"
    )
    parser.add_argument(
        "--vote", action="store_true", help="majority vote on the final answer (SC@k)"
    )
    parser.add_argument("--multipass", action="store_true", help="one thought per pass (DoT-MP)")
    parser.add_argument(
        "--max-passes", type=positive_int, default=12, help="passes per answer with --multipass"
    )
    parser.add_argument("--json", metavar="PATH", help="write the report as JSON")
    parser.add_argument(
        "--save-examples",
        metavar="FILE.jsonl",
        help="write each example's prompt, target, answer, verdict, bucket and metrics",
    )
    parser.add_argument(
        "--metric",
        action="append",
        metavar="NAME",
        help="a metric of the task to report overall and per bucket (repeatable or a comma "
        "list; default: verify, the strict check; e.g. lenient for countdown)",
    )
    add_sampler_options(parser, max_new_tokens=None)


def _recipe_of(model_dir: Path):
    from dlm.training import load_train_config

    for candidate in (model_dir / "train_config.yaml", model_dir.parent / "train_config.yaml"):
        if candidate.is_file():
            return load_train_config(str(candidate))
    return None


def _task_and_examples(args: argparse.Namespace, model_dir: Path):
    from dlm.data import read_jsonl
    from dlm.tasks import Example, get_task
    from dlm.tasks.splits import split_options

    recipe = _recipe_of(model_dir)
    if args.task is None:
        if recipe is None or recipe.data.task is None:
            raise DlmUserError(
                f"{model_dir} was not trained on a registered task (no train_config.yaml with "
                "data.task beside it); name one with --task (and --split/--option)"
            )
        name = recipe.data.task
        options = split_options(
            name, args.split, {**recipe.data.task_options, **parse_options(args.option)}
        )
    else:
        name = args.task
        options = split_options(name, args.split, parse_options(args.option))
    task = get_task(name, **options)
    if args.data is not None:
        examples = [Example.from_json(r) for r in read_jsonl(args.data)]
    elif args.task is None and recipe is not None:
        data = recipe.data
        n_test = args.n or data.n_eval
        _, examples = task.held_out(data.n_train, n_test, seed=data.seed)
    else:
        examples = task.generate(args.n or 200, seed=args.seed_data)
    if args.n is not None:
        examples = examples[: args.n]
    return task, options, examples


def metric_names(values: list[str] | None) -> list[str]:
    """``--metric`` values (repeated flags, each maybe a comma list) as one list of names."""
    from dlm.evaluation.task_eval import DEFAULT_METRIC

    names = [n.strip() for v in values or [] for n in v.split(",") if n.strip()]
    return names or [DEFAULT_METRIC]


def _print_metrics(report) -> None:
    """A table: one row overall and one per bucket, one column per asked-for metric."""
    names = list(report.metrics)
    rows = [("all", report.metrics), *report.bucket_metrics.items()]
    width = max(10, *(len(label) for label, _ in rows))
    print(" " * (width + 2) + "".join(f"{name:>{max(9, len(name) + 2)}}" for name in names))
    for label, values in rows:
        cells = "".join(f"{values[name]:>{max(9, len(name) + 2)}.1%}" for name in names)
        print(f"  {label:>{width}}{cells}")


def example_records(task, examples, answers: list[str], metrics: list[str]) -> list[dict]:
    """One record per example: what it asked, what was right, what the model answered (the
    scored answer: the vote with ``--vote``, else the first sample), the strict verdict, its
    bucket and each asked-for metric."""
    from dlm.evaluation.task_eval import resolve_metrics

    scorers = resolve_metrics(task, metrics)
    records = []
    for example, answer in zip(examples, answers, strict=True):
        scores = {name: score(example, answer) for name, score in scorers.items()}
        records.append(
            {
                "prompt": example.prompt,
                "target": example.target,
                "output": answer,
                "correct": bool(task.verify(example, answer)),
                "bucket": task.bucket(example),
                "metrics": {
                    k: (bool(v) if isinstance(v, bool) else float(v)) for k, v in scores.items()
                },
            }
        )
    return records


def run_eval(args: argparse.Namespace) -> int:
    from dlm.data import write_jsonl
    from dlm.evaluation import evaluate_task
    from dlm.evaluation.task_eval import resolve_metrics

    model_dir = Path(args.model)
    check_sampler_flags(args)
    out = check_output_path(args.json, "--json") if args.json else None
    if args.save_examples:
        check_output_path(args.save_examples, "--save-examples")
    task, options, examples = _task_and_examples(args, model_dir)
    metrics = metric_names(args.metric)
    resolve_metrics(task, metrics)  # an unknown name fails before the model loads
    sampler = sampler_options(args)  # the flags given; the checkpoint's defaults lie beneath
    max_new = sampler.pop("max_new_tokens", None) or task.max_answer_tokens
    if max_new is None:
        raise DlmUserError(f"task {task.name!r} gives no answer length; pass --max-new-tokens")
    model, tokenizer = load_model_and_tokenizer(args.model)
    report = evaluate_task(
        model,
        tokenizer,
        task,
        examples,
        max_new_tokens=max_new,
        batch_size=args.batch_size,
        samples=args.samples,
        vote=args.vote,
        multipass=args.multipass,
        max_passes=args.max_passes,
        metrics=metrics,
        progress=True,
        **sampler,
    )
    result = {"model": str(model_dir), "task_options": options, **report.to_json()}
    kind = "AR (greedy)" if model.is_autoregressive else "diffusion"
    print(f"{task.name} {options}: {kind} model {model_dir}")
    print(
        f"accuracy {report.accuracy:.1%} ({report.correct}/{report.n_eval})"
        + (
            f", SC@{report.samples} from single-sample {report.sample_accuracy:.1%}"
            if report.vote
            else ""
        )
    )
    for label, b in report.buckets.items():
        print(f"  {label:>10}: {b['accuracy']:.1%} ({b['correct']}/{b['n']})")
    if args.metric:
        _print_metrics(report)
    print(
        f"cost: {report.nfe} forward passes, {report.seconds:.1f} s, {report.tokens_per_second:.0f} tokens/s"
    )
    if out is not None:
        atomic_write_text(out, json.dumps(result, indent=2) + "\n")
        print(f"report written to {out}")
    if args.save_examples:
        write_jsonl(args.save_examples, example_records(task, examples, report.answers, metrics))
        print(f"{len(examples)} examples written to {args.save_examples}")
    return 0


run = run_eval  # the entry point main wires (add_arguments / run)
