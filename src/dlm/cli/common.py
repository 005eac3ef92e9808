"""What several ``dlm`` subcommands share: the sampler and task-selection flags, opening a
checkpoint, reading sampler flags and task options back.

Each subcommand module (``demo``, ``train``, ``generate``, ``convert``, ``task_make``,
``evaluate``, ``eval_ppl``) owns its parser through ``add_arguments(parser)`` and runs through
``run(args) -> int``; ``main`` only wires them. Heavy imports (torch, transformers, the
trainer) happen in ``run``, so ``dlm --help`` stays quick.
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

from dlm.errors import DlmUserError

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase

    from dlm.models import DiffusionLM

__all__ = [
    "add_sampler_options",
    "add_task_selection",
    "load_model_and_tokenizer",
    "parse_options",
    "sampler_options",
    "task_names",
]


def add_sampler_options(parser: argparse.ArgumentParser, max_new_tokens: int | None = 64) -> None:
    from dlm.sampling import POLICIES

    group = parser.add_argument_group("sampler")
    group.add_argument(
        "--max-new-tokens",
        type=int,
        default=max_new_tokens,
        help="length of the generation region"
        + (" (default: the task's longest answer)" if max_new_tokens is None else ""),
    )
    group.add_argument(
        "--steps", type=int, default=None, help="denoising steps (default: max-new-tokens)"
    )
    group.add_argument(
        "--policy", choices=POLICIES, default="confidence", help="which positions to commit first"
    )
    group.add_argument(
        "--temperature", type=float, default=0.0, help="token sampling temperature (0 = greedy)"
    )
    group.add_argument("--top-p", type=float, default=None)
    group.add_argument("--top-k", type=int, default=None)
    group.add_argument(
        "--policy-temperature",
        type=float,
        default=0.0,
        help="> 0 samples positions from softmax(score / T) instead of taking the top ones",
    )
    group.add_argument("--seed", type=int, default=None)
    group.add_argument(
        "--block-length",
        type=int,
        default=None,
        help="fill the region in semi-AR blocks of this size",
    )
    group.add_argument(
        "--threshold",
        type=float,
        default=None,
        help="commit every token above this probability (and each row's best) per step",
    )
    group.add_argument(
        "--factor", type=float, default=None, help="Fast-dLLM factor rule instead of a threshold"
    )
    group.add_argument(
        "--cache",
        choices=("none", "prefix", "dual"),
        default="none",
        help="key/value cache refreshed at each block start (approximate)",
    )
    group.add_argument(
        "--compile", action="store_true", help="torch.compile the per-step forward (CUDA graphs)"
    )
    group.add_argument(
        "--eos-penalty", type=float, default=0.0, help="annealed PAD/EOS logit penalty (0 = off)"
    )


def task_names() -> list[str]:
    """The registered task names, sorted (for help texts)."""
    from dlm.tasks import TASKS

    return sorted(TASKS)


def add_task_selection(parser: argparse.ArgumentParser) -> None:
    """``--split`` and ``--option``: which variant of a task (``dlm task make``, ``dlm eval``)."""
    parser.add_argument(
        "--split", help="a named split, e.g. cd3 (countdown), easy (sudoku), n5 (sat)"
    )
    parser.add_argument(
        "--option",
        action="append",
        metavar="key=value",
        help="a task option, e.g. numbers=3 (repeatable)",
    )


def load_model_and_tokenizer(path: str) -> tuple[DiffusionLM, PreTrainedTokenizerBase]:
    """A dlm (or published: Dream, LLaDA, ...) checkpoint's model and its tokenizer.

    The tokenizer is read without remote code; a published checkpoint's mask token is set
    from the model when its tokenizer does not name one.
    """
    from dlm.checkpoints import detect_format, load_model, load_tokenizer
    from dlm.models import NotADlmCheckpointError

    model = load_model(path)
    fmt = getattr(model, "source_format", None) or detect_format(path)
    tokenizer = load_tokenizer(path, fmt, model.config.mask_token_id)
    if tokenizer is None:
        raise NotADlmCheckpointError(f"{path} has no tokenizer saved beside the model")
    return model, tokenizer


def sampler_options(args: argparse.Namespace) -> dict[str, Any]:
    """The sampler keyword arguments of ``dlm.sampling.generate`` from the shared flags."""
    return dict(
        steps=args.steps,
        policy=args.policy,
        temperature=args.temperature,
        top_p=args.top_p,
        top_k=args.top_k,
        policy_temperature=args.policy_temperature,
        seed=args.seed,
        block_length=args.block_length,
        threshold=args.threshold,
        factor=args.factor,
        cache=args.cache,
        compile=args.compile,
        eos_penalty=args.eos_penalty,
    )


def parse_options(pairs: list[str] | None) -> dict[str, Any]:
    """``key=value`` task options; values are read as YAML scalars (numbers, true/false)."""
    from dlm.config import parse_override

    options: dict[str, Any] = {}
    for text in pairs or []:
        path, value = parse_override(text)
        if len(path) != 1:
            raise DlmUserError(
                f"a task option (--option) is a plain key=value, e.g. numbers=3; got {text!r}"
            )
        options[path[0]] = value
    return options
