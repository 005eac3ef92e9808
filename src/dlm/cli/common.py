"""What several ``dlm`` subcommands share: the sampler and task-selection flags, opening a
checkpoint, reading sampler flags and task options back, the range-checked integer flag types
and the checks of output paths made before any work starts.

Each subcommand module (``demo``, ``train``, ``generate``, ``convert``, ``task_make``,
``evaluate``, ``eval_ppl``) owns its parser through ``add_arguments(parser)`` and runs through
``run(args) -> int``; ``main`` only wires them. Heavy imports (torch, transformers, the
trainer) happen in ``run``, so ``dlm --help`` stays quick.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dlm.atomic import check_output_dir, check_output_path
from dlm.errors import DlmUserError, SettingsError

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase

    from dlm.models import DiffusionLM
    from dlm.sampling import ResolvedSettings

__all__ = [
    "add_adapter_option",
    "add_adapter_source",
    "load_adapter_source",
    "write_new_folder",
    "add_quiet_option",
    "progress_disable",
    "add_sampler_options",
    "add_task_selection",
    "check_output_dir",
    "refuse_unknown_tokens",
    "check_output_path",
    "check_sampler_flags",
    "int_at_least",
    "load_model_and_tokenizer",
    "non_negative_int",
    "parse_options",
    "positive_int",
    "resolve_sampler",
    "sampler_options",
    "task_names",
]


def add_quiet_option(parser: argparse.ArgumentParser) -> None:
    """``--quiet``: no progress bars (they already stay silent when stderr is not a terminal)."""
    parser.add_argument(
        "--quiet", action="store_true", help="no progress bars (none is shown in a pipe anyway)"
    )


def progress_disable(args: argparse.Namespace) -> bool | None:
    """tqdm's ``disable=``: True under ``--quiet``, else None (a bar on a terminal only)."""
    return True if getattr(args, "quiet", False) else None


def int_at_least(low: int) -> Callable[[str], int]:
    """An argparse ``type=``: a whole number of at least ``low``.

    A bad value is argparse's own error, which ``dlm``'s parser prints as one line naming the
    flag: ``--batch-size must be at least 1; got -1``.
    """

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"takes a whole number; got {text!r}") from None
        if value < low:
            raise argparse.ArgumentTypeError(f"must be at least {low}; got {value}")
        return value

    parse.__name__ = f"int_at_least_{low}"
    return parse


#: ``type=`` of a count that must be at least one (batch sizes, samples, lengths).
positive_int = int_at_least(1)
#: ``type=`` of a count that may be zero (held-out examples, context tokens).
non_negative_int = int_at_least(0)


def check_sampler_flags(args: argparse.Namespace) -> None:
    """Each sampler flag given, checked against its field's range before the model loads
    (the combination with the checkpoint's defaults is checked once they are read)."""
    from dlm.sampling import SamplerSettings

    for name, value in SamplerSettings.from_arguments(args).items():
        try:
            SamplerSettings.coerce(name, value)
        except SettingsError as err:
            raise SettingsError(f"--{name.replace('_', '-')}: {err}") from err


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


def load_model_and_tokenizer(
    path: str, adapter: str | None = None
) -> tuple[DiffusionLM, PreTrainedTokenizerBase]:
    """``dlm.checkpoints.load_model_and_tokenizer``, imported when a command first needs it
    (so ``dlm --help`` does not load torch)."""
    from dlm.checkpoints import load_model_and_tokenizer as load

    return load(path, adapter)


def refuse_unknown_tokens(tokenizer, prompts: list[str], where: list[str]) -> None:
    """A ``DlmUserError`` naming the pieces of a prompt the tokenizer reads as its unknown
    token (``where[i]`` says where prompt i came from): a Sudoku model given ``120...`` would
    otherwise read each ``.`` as [UNK] and answer nonsense without a word."""
    unk = tokenizer.unk_token_id
    if unk is None:
        return
    for text, origin in zip(prompts, where, strict=True):
        try:
            encoded = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
            spans = encoded["offset_mapping"]
        except (NotImplementedError, ValueError, TypeError):  # a slow tokenizer has no offsets
            encoded, spans = tokenizer(text, add_special_tokens=False), None
        ids = encoded["input_ids"]
        if unk not in ids:
            continue
        pieces = (
            sorted({text[a:b] for i, (a, b) in zip(ids, spans, strict=True) if i == unk})
            if spans
            else []
        )
        shown = ", ".join(repr(p) for p in pieces) if pieces else "some of its text"
        verb = "is" if len(pieces) <= 1 else "are"
        raise DlmUserError(
            f"{origin}: {shown} {verb} not in the model's vocabulary (each would be read as "
            f"{tokenizer.unk_token}); write the prompt in the model's alphabet, or pass "
            "--allow-unk to sample anyway"
        )


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


# ---------------------------------------------------------------------- adapters
def add_adapter_option(parser: argparse.ArgumentParser) -> None:
    """``--adapter DIR``: a dlm adapter folder added on top of ``--model`` (its base)."""
    parser.add_argument(
        "--adapter",
        metavar="DIR",
        help="a dlm adapter folder (dlm train with a peft: section) to put on --model",
    )


def add_adapter_source(parser: argparse.ArgumentParser) -> None:
    """``--adapter DIR`` (required) and ``--model BASE`` (default: the base it points at)."""
    parser.add_argument("--adapter", metavar="DIR", required=True, help="a dlm adapter folder")
    parser.add_argument(
        "--model", metavar="BASE", help="its base model (default: the folder it points at)"
    )


def load_adapter_source(args: argparse.Namespace):
    """(model with the adapter, tokenizer, base folder) for ``add_adapter_source``'s flags."""
    from dlm.checkpoints import adapter_base, is_adapter_dir

    if not is_adapter_dir(args.adapter):
        raise DlmUserError(
            f"--adapter {args.adapter} is not a dlm adapter folder (it needs adapter_config.json "
            "and adapter.safetensors); give the model/ folder of a dlm train run with a peft: section"
        )
    base = adapter_base(args.adapter, args.model)
    model, tokenizer = load_model_and_tokenizer(str(base), adapter=args.adapter)
    return model, tokenizer, base


class _NewFolder:
    """Write a folder whole: into ``.tmp-<name>`` beside it, then moved in (``replace_dir``)."""

    @staticmethod
    def check(path: str, option: str) -> Path:
        """``path`` as a new or empty folder this command may create, checked before work."""
        out = check_output_dir(path, option)
        if out.is_dir() and any(out.iterdir()):
            raise DlmUserError(f"{option} {out} is not empty; give a new or empty folder")
        return out

    def __call__(self, out: Path, write: Callable[[Path], Any]) -> None:
        from dlm.atomic import discard_dir, fsync_tree, replace_dir

        tmp = out.with_name(f".tmp-{out.name}")
        if tmp.exists():
            discard_dir(tmp)
        tmp.mkdir(parents=True)
        write(tmp)
        fsync_tree(tmp)
        replace_dir(tmp, out)


#: ``write_new_folder(out, write)`` writes ``write(tmp)``'s folder as ``out`` in one move;
#: ``write_new_folder.check(path, option)`` validates ``out`` first.
write_new_folder = _NewFolder()
