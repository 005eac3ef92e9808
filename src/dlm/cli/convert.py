"""``dlm convert SRC DST``: rewrite a published checkpoint (Dream, LLaDA, ...) as a dlm one.

    dlm convert ~/models/LLaDA-8B-Base checkpoints/llada-8b

reads SRC without remote code (see ``dlm.checkpoints``) and writes DST as
``DiffusionLM.save_pretrained`` does, with the tokenizer when SRC has one. DST is checked
before SRC is read: a folder (empty) or a new path, not under a file, in a writable folder.
A bar on stderr follows its three steps (read the weights, read the tokenizer, write DST) on
a terminal only (none in a pipe or with ``--quiet``).
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any

from dlm.errors import DlmUserError

from .common import add_quiet_option, check_output_dir, progress_disable

__all__ = ["HELP", "add_arguments", "run", "run_convert"]

HELP = (
    "rewrite a published checkpoint (Dream, Dream-Coder, LLaDA, DiffuGPT, DiffuLLaMA) "
    "as a dlm checkpoint, without remote code"
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("src", help="the published checkpoint directory")
    parser.add_argument("dst", help="where to write the dlm checkpoint")
    add_quiet_option(parser)


def run(args: argparse.Namespace) -> int:
    return run_convert(args.src, args.dst, disable=progress_disable(args))


class _StepBar:
    """A ``convert`` progress callback: each step that starts completes the one before it
    and names itself on the bar."""

    def __init__(self, bar: Any) -> None:
        self.bar = bar
        self.started = 0

    def __call__(self, what: str) -> None:
        if self.started:
            self.bar.update(1)
        self.started += 1
        self.bar.set_postfix_str(what)


def run_convert(
    src: str | os.PathLike, dst: str | os.PathLike, *, disable: bool | None = True
) -> int:
    """Convert ``src`` into the dlm checkpoint ``dst`` and say what was done; returns 0.

    ``disable`` is tqdm's for the bar over the steps (True, the default: none; None: on a
    terminal only)."""
    if not Path(src).is_dir():  # before torch and transformers load (seconds)
        raise DlmUserError(f"{src} is not a directory; pass the folder a checkpoint was saved to")
    from tqdm.auto import tqdm

    from dlm.checkpoints import convert
    from dlm.checkpoints.convert import CONVERT_STEPS

    check_output_dir(dst, "DST")
    total = len(CONVERT_STEPS)
    with tqdm(total=total, desc="convert", unit="step", disable=disable) as bar:
        result = convert(src, dst, progress=_StepBar(bar))
        bar.update(total - bar.n)
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
