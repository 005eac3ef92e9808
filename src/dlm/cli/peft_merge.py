"""``dlm peft merge``: fold an adapter into its base's weights and write a plain dlm checkpoint.

    dlm peft merge --adapter runs/sums-prolora/model --out checkpoints/sums-merged

The adapter folder (what ``dlm train`` writes for a recipe with a ``peft:`` section) opens on
the base it points at, or on ``--model BASE``; every adapted layer becomes its base layer
holding W + (alpha / r) B A (summed in float32), and the result is saved as
``DiffusionLM.save_pretrained`` saves, with the adapter's tokenizer and diffusion fields. The
merged model computes what the adapted one does (to float rounding) with no adapter latency.
OUT must be a new or empty folder; it is written aside and moved in whole.
"""

from __future__ import annotations

import argparse

from .common import add_adapter_source, load_adapter_source, write_new_folder

__all__ = ["HELP", "add_arguments", "run"]

HELP = "merge an adapter into its base's weights (a plain dlm checkpoint)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_adapter_source(parser)
    parser.add_argument("--out", metavar="DIR", required=True, help="the merged checkpoint")


def run(args: argparse.Namespace) -> int:
    from dlm.peft import merge_adapter

    out = write_new_folder.check(args.out, "--out")
    model, tokenizer, base = load_adapter_source(args)
    merge_adapter(model)
    write_new_folder(out, lambda tmp: model.save_pretrained(tmp, tokenizer))
    print(f"merged adapter {args.adapter} into {base}: wrote the dlm checkpoint {out}")
    return 0
