"""What several ``dlm`` subcommands share: opening a checkpoint, reading sampler flags."""

from __future__ import annotations

import argparse
from typing import Any

from transformers import AutoTokenizer, PreTrainedTokenizerBase

from dlm.models import DiffusionLM, NotADlmCheckpointError

__all__ = ["load_model_and_tokenizer", "sampler_options", "parse_options"]


def load_model_and_tokenizer(path: str) -> tuple[DiffusionLM, PreTrainedTokenizerBase]:
    """A dlm checkpoint directory's model and the tokenizer saved beside it."""
    model = DiffusionLM.from_pretrained(path)
    try:
        tokenizer = AutoTokenizer.from_pretrained(path)
    except (OSError, ValueError) as err:
        raise NotADlmCheckpointError(
            f"{path} has no tokenizer saved beside the model ({err})"
        ) from err
    return model, tokenizer


def sampler_options(args: argparse.Namespace) -> dict[str, Any]:
    """The sampler keyword arguments of ``DiffusionLM.generate`` from the shared flags."""
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
            raise ValueError(f"a task option is a plain key=value, e.g. numbers=3; got {text!r}")
        options[path[0]] = value
    return options
