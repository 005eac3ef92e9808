"""``dlm demo``: train a diffusion model on Sudoku from scratch and solve held-out puzzles.

    dlm demo [--compare-ar] [--json PATH] [--out DIR] [key=value ...]

runs ``dlm.demo.run_demo``, the embedded recipe identical to ``recipes/sudoku/diffusion.yaml``;
``key=value`` overrides change it (e.g. ``optim.max_steps=300``).
"""

from __future__ import annotations

import argparse

__all__ = ["HELP", "add_arguments", "run"]

HELP = "train a diffusion model on Sudoku from scratch and solve held-out puzzles"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--compare-ar", action="store_true", help="also train the same-size AR model and compare"
    )
    parser.add_argument("--json", metavar="PATH", help="write the results as JSON")
    parser.add_argument(
        "--out", metavar="DIR", help="keep the trained model as a dlm checkpoint in DIR"
    )
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
    run_demo(compare_ar=args.compare_ar, json_path=args.json, out_dir=args.out, overrides=overrides)
    return 0
