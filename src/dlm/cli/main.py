"""``dlm`` command-line entry point: wires the subcommands, each of which owns its parser.

    dlm demo [--compare-ar] [--json PATH] [--out DIR]
    dlm train RECIPE.yaml [key=value ...]
    dlm generate --model DIR (--prompt TEXT | --input FILE.jsonl) [sampler options]
    dlm serve --model DIR [--adapter DIR] [--host H --port P] [--api-key KEY]  (OpenAI API, page)
    dlm task make NAME [--split S] [--n N] [--n-test N] [--seed S] [--out DIR]
    dlm eval --model DIR [--task NAME --split S] [--samples K --vote] [sampler options]
    dlm convert SRC DST      (a Dream, Dream-Coder, LLaDA, DiffuGPT or DiffuLLaMA directory)
    dlm eval ppl --model DIR --data FILE [--seq-len N] [--mc-num K]
    dlm eval code --model DIR --samples K [--k 1,K] [--problems N] [--out FILE.jsonl]  (HumanEval)
    dlm eval lm-eval --model dlm --model_args pretrained=DIR,... --tasks ...   (lm-eval's flags)
    dlm chess make --games N --workers W --out DIR   (Stockfish-labelled self-play)
    dlm chess puzzles --data DIR --out FILE.csv      (Lichess-form puzzles, offline)
    dlm chess eval --agents DIR... [mcts] --data DIR --puzzles FILE.csv
    dlm chess play --model DIR [--color black]
    dlm peft merge --adapter DIR --out DIR   (fold an adapter into its base: a dlm checkpoint)
    dlm peft export --adapter DIR --out DIR  (a standard peft LoRA adapter)
    dlm plot RUN... [--tag TAG ...] [--smooth K] [--out FILE.png]   (the TensorBoard curves)

Each subcommand is a module of ``dlm.cli`` with ``add_arguments(parser)`` and
``run(args) -> int``. A ``DlmUserError`` (a mistake the user can fix: a flag, a recipe key, a
path, a checkpoint, a data file) prints as one line, ``dlm <command>: error: <message>``, and
exits with status 2 (set DLM_DEBUG=1 to see its traceback). A flag argparse refuses (a missing
one, a value out of range, an unknown choice) is the same one line and status 2, without the
usage text. Any other exception is a bug and propagates with its traceback.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from collections.abc import Sequence
from types import ModuleType

from dlm import __version__
from dlm.errors import DlmUserError

from . import (
    chess_eval,
    chess_make,
    chess_play,
    chess_puzzles,
    convert,
    demo,
    eval_code,
    eval_ppl,
    evaluate,
    generate,
    peft_export,
    peft_merge,
    plot,
    serve,
    task_make,
    train,
)

__all__ = [
    "COMMANDS",
    "UsageError",
    "build_code_parser",
    "build_parser",
    "build_ppl_parser",
    "main",
]

#: Every subcommand (``task`` groups ``task make``), in the order ``dlm --help`` lists them.
COMMANDS: dict[str, ModuleType | dict[str, ModuleType]] = {
    "demo": demo,
    "train": train,
    "generate": generate,
    "serve": serve,
    "convert": convert,
    "task": {"make": task_make},
    "chess": {
        "make": chess_make,
        "puzzles": chess_puzzles,
        "eval": chess_eval,
        "play": chess_play,
    },
    "peft": {"merge": peft_merge, "export": peft_export},
    "eval": evaluate,
    "plot": plot,
}
_GROUP_HELP = {
    "task": "work with the offline task generators",
    "chess": "DiffuSearch chess: self-play data, agents' evaluation, play",
    "peft": "adapters (PRoLoRA, LoRA): merge into the base, export to peft",
}
_ARGUMENT = re.compile(r"argument ([^:]+): (.*)", re.DOTALL)


class UsageError(DlmUserError):
    """A command line argparse refused; ``prog`` is the (sub)command that refused it."""

    def __init__(self, prog: str, message: str) -> None:
        super().__init__(message)
        self.prog = prog


class _Parser(argparse.ArgumentParser):
    """argparse, with its errors raised as ``UsageError`` so ``main`` prints them as one line.

    ``argument --batch-size: must be at least 1; got -1`` reads ``--batch-size must be at
    least 1; got -1``; other messages keep argparse's wording.
    """

    def error(self, message: str):  # type: ignore[override]
        match = _ARGUMENT.fullmatch(message)
        if match:
            flag, what = match.groups()
            message = (
                f"{flag} {what}" if what.startswith(("must ", "takes ")) else f"{flag}: {what}"
            )
        raise UsageError(self.prog, message)


def _add_command(
    sub: argparse._SubParsersAction, name: str, module: ModuleType, full: bool = True
) -> None:
    command = sub.add_parser(name, help=module.HELP)
    if full:
        module.add_arguments(command)
    command.set_defaults(run=module.run)


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The ``dlm`` parser; ``only`` given, just that command gets its flags (the others are
    listed by name and help): a command's flags can import torch (the sampler flags come from
    ``SamplerSettings``), which ``dlm --help`` and ``dlm --version`` need not wait for."""
    parser = _Parser(prog="dlm", description="Discrete (masked) diffusion language models.")
    parser.add_argument("--version", action="version", version=f"dlm {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    for name, entry in COMMANDS.items():
        full = only is None or only == name
        if isinstance(entry, dict):
            group = sub.add_parser(name, help=_GROUP_HELP[name])
            group_sub = group.add_subparsers(dest=f"{name}_command", required=True)
            for sub_name, module in entry.items():
                _add_command(group_sub, sub_name, module, full)
        else:
            _add_command(sub, name, entry, full)
    return parser


def build_ppl_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="dlm eval ppl", description=eval_ppl.DESCRIPTION)
    eval_ppl.add_arguments(parser)
    parser.set_defaults(command="eval ppl", run=eval_ppl.run)
    return parser


def build_code_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="dlm eval code", description=eval_code.DESCRIPTION)
    eval_code.add_arguments(parser)
    parser.set_defaults(command="eval code", run=eval_code.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:2] == ["eval", "lm-eval"]:  # lm-eval parses its own flags
        from .eval_lm import run_lm_eval

        return run_lm_eval(argv[2:])
    try:
        if argv[:2] == ["eval", "ppl"]:
            args = build_ppl_parser().parse_args(argv[2:])
        elif argv[:2] == ["eval", "code"]:
            args = build_code_parser().parse_args(argv[2:])
        else:
            command = next((a for a in argv if not a.startswith("-")), "")
            args = build_parser(command if command in COMMANDS else "").parse_args(argv)
    except UsageError as err:
        return _report(err.prog, err)
    try:
        return args.run(args)
    except DlmUserError as err:
        group = getattr(args, f"{args.command}_command", None)  # task make: "dlm task make"
        return _report(" ".join(["dlm", args.command, *([group] if group else [])]), err)


def _report(prog: str, err: DlmUserError) -> int:
    """Print a user error as one line of stderr and return status 2 (DLM_DEBUG=1 re-raises)."""
    if os.environ.get("DLM_DEBUG"):
        raise err
    message = " ".join(str(err).split())  # one line, whatever the message holds
    print(f"{prog}: error: {message}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
