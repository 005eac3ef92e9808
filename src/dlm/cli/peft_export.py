"""``dlm peft export``: write an adapter as a standard Hugging Face peft LoRA adapter.

    dlm peft export --adapter runs/sums-prolora/model --out exported/sums-lora

A PRoLoRA adapter becomes the rank-r LoRA it equals (its broadcast, rotated A and B
materialised), a LoRA adapter is written as it is; stock ``peft`` then loads it onto the same
base backbone (``PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(BASE), OUT)``)
and computes what the adapter does in dlm. ``base_model_name_or_path`` is the base folder.
OUT must be a new or empty folder; it is written aside and moved in whole.
"""

from __future__ import annotations

import argparse

from .common import add_adapter_source, load_adapter_source, write_new_folder

__all__ = ["HELP", "add_arguments", "run"]

HELP = "export an adapter (PRoLoRA or LoRA) as a standard peft LoRA adapter"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_adapter_source(parser)
    parser.add_argument("--out", metavar="DIR", required=True, help="the peft adapter folder")


def run(args: argparse.Namespace) -> int:
    from dlm.peft import export_peft

    out = write_new_folder.check(args.out, "--out")
    model, _, base = load_adapter_source(args)
    write_new_folder(out, lambda tmp: export_peft(model, tmp, base=str(base)))
    print(f"exported adapter {args.adapter} (base {base}) as a peft LoRA adapter: {out}")
    return 0
