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
    from dlm.sampling import ResolvedSettings

__all__ = [
    "add_sampler_options",
    "add_task_selection",
    "load_model_and_tokenizer",
    "parse_options",
    "resolve_sampler",
    "sampler_options",
    "task_names",
]


def add_sampler_options(parser: argparse.ArgumentParser, max_new_tokens: int | None = 64) -> None:
    """The sampler flags: one per ``SamplerSettings`` field, generated from its fields.

    Every flag defaults to "not given", so the checkpoint's saved sampler defaults show
    through; ``max_new_tokens`` is this command's own default length (None: the task's).
    """
    from dlm.sampling import SamplerSettings

    SamplerSettings.add_arguments(parser)
    parser.set_defaults(command_max_new_tokens=max_new_tokens)


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
    """The sampler flags the user gave (the explicit layer of ``SamplerSettings.resolve``)."""
    from dlm.sampling import SamplerSettings

    return SamplerSettings.from_arguments(args)


def resolve_sampler(args: argparse.Namespace, model: DiffusionLM) -> ResolvedSettings:
    """The run's settings: the flags given > the checkpoint's defaults > the command's > dlm's."""
    from dlm.sampling import SamplerSettings

    return SamplerSettings.resolve(
        sampler_options(args),
        checkpoint=model.generation_defaults,
        defaults={"max_new_tokens": getattr(args, "command_max_new_tokens", None)},
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
