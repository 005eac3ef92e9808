"""``dlm demo``: train a diffusion model on Sudoku from scratch and solve held-out puzzles.

    dlm demo [--compare-ar] [--json PATH] [--out DIR | --no-save] [key=value ...]

runs ``dlm.demo.run_demo``, the embedded recipe identical to ``recipes/sudoku/diffusion.yaml``;
``key=value`` overrides change it (e.g. ``optim.max_steps=300``). The trained model is kept in
``sudoku-model/`` (``--out DIR`` elsewhere, ``--no-save`` not at all), and the demo closes with
a ``dlm generate`` command on it that works when pasted.
"""

from __future__ import annotations

import argparse

__all__ = ["DEFAULT_OUT", "HELP", "add_arguments", "run"]

HELP = "train a diffusion model on Sudoku from scratch and solve held-out puzzles"
#: Where ``dlm demo`` keeps the model it trained, unless ``--out`` or ``--no-save`` says else.
DEFAULT_OUT = "sudoku-model"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--compare-ar", action="store_true", help="also train the same-size AR model and compare"
    )
    parser.add_argument("--json", metavar="PATH", help="write the results as JSON")
    keep = parser.add_mutually_exclusive_group()
    keep.add_argument(
        "--out",
        metavar="DIR",
        default=DEFAULT_OUT,
        help=f"keep the trained model as a dlm checkpoint in DIR (default: {DEFAULT_OUT})",
    )
    keep.add_argument("--no-save", action="store_true", help="do not keep the trained model")
    parser.add_argument(
        "overrides",
        nargs="*",
        metavar="key=value",
        help="change the embedded recipe, e.g. optim.max_steps=300",
    )


def run(args: argparse.Namespace) -> int:
    from dlm.config import parse_override
    from dlm.demo import run_demo

    overrides = {}
    for text in args.overrides:
        path, value = parse_override(text)
        overrides[".".join(path)] = value
    out = None if args.no_save else args.out
    run_demo(compare_ar=args.compare_ar, json_path=args.json, out_dir=out, overrides=overrides)
    return 0
