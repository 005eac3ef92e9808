"""``dlm task make``: write a task's seeded train and test examples as JSONL files.

    dlm task make countdown --split cd4 --n 50000 --n-test 1000 --seed 0 --out data/cd4

writes ``train.jsonl`` and ``test.jsonl`` (one ``{"prompt", "target", "meta"}`` object per
line, the layout ``data.train_file`` and ``dlm eval --data`` read) and ``task.json`` (the task
name and options, so the files can be regenerated exactly). The folder and the three files are
checked before any example is made; each file is written atomically, ``task.json`` last.
A bar on stderr counts the examples made, on a terminal only (none in a pipe or with
``--quiet``).
"""

from __future__ import annotations

import argparse
import json

from dlm.atomic import atomic_write_text

from .common import (
    add_quiet_option,
    add_task_selection,
    check_output_dir,
    check_output_path,
    non_negative_int,
    parse_options,
    progress_disable,
    task_names,
)

__all__ = ["HELP", "add_arguments", "run", "run_task_make"]

HELP = "write a task's seeded train/test examples as JSONL"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("name", help="a registered task: " + ", ".join(task_names()))
    add_task_selection(parser)
    parser.add_argument("--n", type=non_negative_int, default=10000, help="training examples")
    parser.add_argument("--n-test", type=non_negative_int, default=1000, help="held-out examples")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", metavar="DIR", help="output directory (default data/NAME[-SPLIT])")
    add_quiet_option(parser)


def _make_examples(task, args: argparse.Namespace) -> tuple[list, list]:
    """The task's (train, test) examples, behind a bar over the examples made."""
    from tqdm.auto import tqdm

    with tqdm(
        total=args.n + args.n_test,
        desc=f"make {args.name}",
        unit="ex",
        disable=progress_disable(args),
        dynamic_ncols=True,
    ) as bar:
        return task.held_out(args.n, args.n_test, args.seed, progress=bar.update)


def run(args: argparse.Namespace) -> int:
    from dlm.data import write_jsonl
    from dlm.errors import DlmUserError
    from dlm.tasks import DATA_TASKS, get_task

    if args.name in DATA_TASKS:
        raise DlmUserError(
            f"{args.name} examples come from a data folder, not a seed: make it with "
            f"`dlm {args.name} make --games N --out DIR`"
        )
    from dlm.tasks.splits import split_options

    suffix = f"-{args.split}" if args.split else ""
    out = check_output_dir(args.out or f"data/{args.name}{suffix}", "--out")
    options = split_options(args.name, args.split, parse_options(args.option))
    task = get_task(args.name, **options)
    for name in ("train.jsonl", "test.jsonl", "task.json"):
        check_output_path(out / name, "--out")
    train, test = _make_examples(task, args)
    write_jsonl(out / "train.jsonl", [e.to_json() for e in train])
    write_jsonl(out / "test.jsonl", [e.to_json() for e in test])
    spec = {
        "task": args.name,
        "options": options,
        "seed": args.seed,
        "n": args.n,
        "n_test": args.n_test,
    }
    atomic_write_text(out / "task.json", json.dumps(spec, indent=2) + "\n")
    print(
        f"wrote {len(train)} training and {len(test)} test examples of {args.name}{suffix} to {out}"
    )
    return 0


run_task_make = run  # the name earlier code imports
