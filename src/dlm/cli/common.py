"""What several ``dlm`` subcommands share: opening a checkpoint, reading sampler flags."""

from __future__ import annotations

import argparse
from typing import Any

from transformers import PreTrainedTokenizerBase

from dlm.errors import DlmUserError
from dlm.models import DiffusionLM, NotADlmCheckpointError

__all__ = ["load_model_and_tokenizer", "sampler_options", "parse_options"]


def load_model_and_tokenizer(path: str) -> tuple[DiffusionLM, PreTrainedTokenizerBase]:
    """A dlm (or published: Dream, LLaDA, ...) checkpoint's model and its tokenizer.

    The tokenizer is read without remote code; a published checkpoint's mask token is set
    from the model when its tokenizer does not name one.
    """
    from dlm.checkpoints import detect_format, load_model, load_tokenizer

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
            raise DlmUserError(f"a task option (--option) is a plain key=value, e.g. numbers=3; got {text!r}")
        options[path[0]] = value
    return options
