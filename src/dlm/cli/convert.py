"""``dlm convert SRC DST``: rewrite a published checkpoint (Dream, LLaDA, ...) as a dlm one.

    dlm convert ~/models/LLaDA-8B-Base checkpoints/llada-8b

reads SRC without remote code (see ``dlm.checkpoints``) and writes DST as
``DiffusionLM.save_pretrained`` does, with the tokenizer when SRC has one. DST is checked
before SRC is read: a folder (empty) or a new path, not under a file, in a writable folder.
"""

from __future__ import annotations

import argparse
import os

__all__ = ["HELP", "add_arguments", "run", "run_convert"]

HELP = (
    "rewrite a published checkpoint (Dream, Dream-Coder, LLaDA, DiffuGPT, DiffuLLaMA) "
    "as a dlm checkpoint, without remote code"
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("src", help="the published checkpoint directory")
    parser.add_argument("dst", help="where to write the dlm checkpoint")


def run(args: argparse.Namespace) -> int:
    return run_convert(args.src, args.dst)


def run_convert(src: str | os.PathLike, dst: str | os.PathLike) -> int:
    """Convert ``src`` into the dlm checkpoint ``dst`` and say what was done; returns 0."""
    from dlm.checkpoints import convert

    from .common import check_output_dir

    check_output_dir(dst, "DST")
    result = convert(src, dst)
    print(
        f"read {result.source} as a {result.format} checkpoint: {result.architecture}, "
        f"{result.parameters / 1e6:,.1f}M parameters, mask id {result.mask_token_id}, "
        f"shift {'on' if result.shift else 'off'}, {result.attention} attention"
    )
    print(
        f"wrote the dlm checkpoint {result.destination} "
        + ("with the tokenizer" if result.tokenizer else "(the source has no tokenizer)")
    )
    return 0
