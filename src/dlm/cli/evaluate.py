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

Examples of another task are refused before anything is sampled, each with a one-line error:
``--task OTHER`` for a model whose ``train_config.yaml`` names its task; a ``--data`` file none
of whose first examples' gold targets passes the evaluated task's check (the error names the
task whose check they do pass); and, once the tokenizer is read, a prompt holding characters
outside the model's vocabulary. ``--force-task`` evaluates another task's examples anyway
(the vocabulary check stays; ``--allow-unk`` lifts it).

A bar on stderr follows the examples being made (a recipe's held-out split is regenerated
from its seed) and then the evaluation (examples, examples/s, running accuracy), on a
terminal only: none in a pipe or a log, none with ``--quiet``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from dlm.atomic import atomic_write_text
from dlm.errors import DlmUserError

from .common import (
    add_adapter_option,
    add_quiet_option,
    add_sampler_options,
    add_task_selection,
    check_output_path,
    check_sampler_flags,
    load_model_and_tokenizer,
    parse_options,
    positive_int,
    progress_disable,
    refuse_unknown_tokens,
    sampler_options,
)

__all__ = ["CHECKED_EXAMPLES", "HELP", "add_arguments", "run", "run_eval"]

#: How many of a --data file's first examples are checked against the evaluated task.
CHECKED_EXAMPLES = 16

HELP = (
    "verified task accuracy of a checkpoint, per bucket "
    "(also: dlm eval ppl ..., dlm eval lm-eval ...)"
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", required=True, help="a dlm checkpoint directory")
    add_adapter_option(parser)
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
    parser.add_argument(
        "--force-task",
        action="store_true",
        help="evaluate examples of another task than the one the model was trained on",
    )
    parser.add_argument(
        "--allow-unk",
        action="store_true",
        help="evaluate even when a prompt holds text outside the model's vocabulary",
    )
    add_quiet_option(parser)
    add_sampler_options(parser, max_new_tokens=None)


def _check_task_name(args: argparse.Namespace, trained_on: str | None) -> None:
    """Refuse ``--task OTHER`` for a model trained on a task (unless ``--force-task``)."""
    if args.force_task or args.task is None or trained_on is None or args.task == trained_on:
        return
    raise DlmUserError(
        f"this model was trained on {trained_on}, not {args.task} (--task {args.task}); drop "
        f"--task to evaluate {trained_on}, or pass --force-task to evaluate {args.task} anyway"
    )


def _passes(task, example) -> bool:
    """Whether ``example``'s gold target passes ``task``'s check (a foreign prompt that the
    verifier cannot read does not)."""
    try:
        return bool(task.verify(example, example.target))
    except (ValueError, KeyError, IndexError, TypeError):
        return False


def _tasks_passing(examples: list, exclude: str) -> list[str]:
    """The registered tasks (default options) whose check every one of ``examples`` passes."""
    from dlm.tasks import TASKS, get_task

    names = [name for name in sorted(TASKS) if name != exclude]
    return [name for name in names if all(_passes(get_task(name), e) for e in examples)]


def _check_data_task(task, examples: list, path: str, trained_on: str | None) -> None:
    """Refuse a data file none of whose first examples is one of ``task``'s, naming the task
    they do belong to when one registered task's check passes them all."""
    sample = examples[:CHECKED_EXAMPLES]
    if not sample or any(_passes(task, e) for e in sample):
        return
    name = task.name
    expected = (
        f"this model was trained on {name}" if trained_on == name else f"--task {name} was asked"
    )
    others = _tasks_passing(sample, exclude=name)
    holds = f"holds {' or '.join(others)} examples" if others else f"holds no examples of {task!r}"
    raise DlmUserError(
        f"--data {path} {holds}, but {expected}: none of its first {len(sample)} targets "
        f"passes {name}'s check; evaluate {name} examples (dlm task make {name}, with the "
        "model's --split/--option), or pass --force-task to evaluate these anyway"
    )


def _examples_bar(args: argparse.Namespace, total: int, name: str):
    """A bar over the examples being made, on a terminal only (none with --quiet)."""
    from tqdm.auto import tqdm

    return tqdm(
        total=total,
        desc=f"make {name} examples",
        unit="ex",
        disable=progress_disable(args),
        dynamic_ncols=True,
    )


def _kept_heldout(model_dir: Path, n: int) -> list | None:
    """The held-out examples ``dlm train`` kept beside the model, when it kept at least ``n``
    (they equal the split regenerated from the recipe's seed, without remaking the training set)."""
    from dlm.data import read_jsonl
    from dlm.tasks import Example
    from dlm.training import HELDOUT_NAME

    path = model_dir / HELDOUT_NAME
    if not path.is_file():
        return None
    examples = [Example.from_json(r) for r in read_jsonl(path)]
    return examples[:n] if len(examples) >= n else None


def _make_examples(args: argparse.Namespace, task, recipe, model_dir: Path) -> list:
    """The recipe's held-out split (kept beside the model by ``dlm train``, or regenerated
    from its seed) or ``--seed-data`` examples."""
    if args.task is None and recipe is not None:
        data = recipe.data
        n_test = args.n or data.n_eval
        if data.train_file is not None:  # the kept examples are the eval file's first n_eval
            n_test = min(n_test, data.n_eval)
        same_task = not args.split and not args.option  # the examples kept are the recipe's
        kept = _kept_heldout(model_dir, n_test) if same_task else None
        if kept is not None:
            return kept
        if data.train_file is not None:  # trained on task files: its held-out split is a file
            if data.eval_file is None:
                raise DlmUserError(
                    f"{model_dir} was trained on {data.train_file} with no data.eval_file to "
                    "hold out; pass the test examples with --data FILE.jsonl"
                )
            from dlm.data import read_jsonl
            from dlm.tasks import Example

            return [Example.from_json(r) for r in read_jsonl(data.eval_file)][: args.n]
        with _examples_bar(args, data.n_train + n_test, task.name) as bar:
            return task.held_out(data.n_train, n_test, data.seed, progress=bar.update)[1]
    with _examples_bar(args, args.n or 200, task.name) as bar:
        return task.generate(args.n or 200, args.seed_data, progress=bar.update)


def _task_and_examples(args: argparse.Namespace, model_dir: Path):
    from dlm.data import read_jsonl
    from dlm.tasks import Example, get_task
    from dlm.tasks.splits import split_options
    from dlm.training import recorded_recipe

    recipe = recorded_recipe(model_dir)
    trained_on = recipe.data.task if recipe is not None else None
    _check_task_name(args, trained_on)
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
    else:
        examples = _make_examples(args, task, recipe, model_dir)
    if args.n is not None:
        examples = examples[: args.n]
    if args.data is not None and not args.force_task:
        _check_data_task(task, examples, args.data, trained_on)
    return task, options, examples


def _refuse_unknown_prompts(args: argparse.Namespace, tokenizer, examples: list) -> None:
    """Refuse a prompt the model's tokenizer reads as [UNK] in places (unless --allow-unk)."""
    if args.allow_unk:
        return
    origin = f"--data {args.data}" if args.data is not None else "generated"
    where = [f"{origin} example {i}" for i in range(1, len(examples) + 1)]
    refuse_unknown_tokens(tokenizer, [e.prompt for e in examples], where)


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

    model_dir = Path(args.adapter or args.model)  # the recipe and held-out data are the adapter's
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
    model, tokenizer = load_model_and_tokenizer(args.model, args.adapter)
    _refuse_unknown_prompts(args, tokenizer, examples)
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
        progress=not args.quiet,
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
