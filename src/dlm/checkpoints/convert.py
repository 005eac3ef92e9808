"""``convert``: rewrite a published checkpoint as a plain dlm checkpoint directory.

The result is what ``DiffusionLM.save_pretrained`` writes (a native ``transformers`` model in
safetensors plus ``dlm_config.json``) and, when the source has one, its tokenizer saved by
``save_pretrained`` with the mask token set. Tokenizers that name remote-code classes (Dream's
``DreamTokenizer``) are read with the built-in class they wrap. The directory is written under
a temporary name and renamed at the end, so a failed conversion leaves nothing half-written.

``convert(..., progress=step)`` calls ``step(what)`` as each of its ``CONVERT_STEPS`` starts
(reading the weights, reading the tokenizer, writing the destination), so a caller can show
a bar over them (``dlm convert`` does, on a terminal).
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
import transformers
from transformers import AutoTokenizer, PreTrainedTokenizerBase

from dlm.errors import DlmUserError
from dlm.models.diffusion_lm import DiffusionLM, NotADlmCheckpointError

from .detect import detect_format
from .load import load_published
from .weights import weight_files

__all__ = ["CONVERT_STEPS", "ConvertResult", "convert", "load_tokenizer"]

#: What ``convert`` does, in order; its ``progress`` is called once as each one starts.
CONVERT_STEPS = ("read the weights", "read the tokenizer", "write the dlm checkpoint")

_TOKENIZER_FILES = ("tokenizer.json", "tokenizer.model", "vocab.json", "tokenizer_config.json")
_TOKENIZER_JSON = (
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "vocab.json",
)

#: The built-in tokenizer class each family's tokenizer is, when ``AutoTokenizer`` refuses it.
_FALLBACK_TOKENIZERS = {
    "dream": "Qwen2Tokenizer",
    "llada": "PreTrainedTokenizerFast",
    "diffugpt": "GPT2Tokenizer",
    "diffullama": "LlamaTokenizer",
    "sdar": "Qwen2Tokenizer",
    "fast_dllm_v2": "Qwen2Tokenizer",
}


@dataclass(frozen=True)
class ConvertResult:
    """What ``convert`` read and wrote."""

    source: Path
    destination: Path
    format: str
    architecture: str
    parameters: int
    mask_token_id: int
    shift: bool
    attention: str
    tokenizer: bool


def load_tokenizer(
    directory: str | os.PathLike, fmt: str, mask_token_id: int | None = None
) -> PreTrainedTokenizerBase | None:
    """The tokenizer saved in ``directory`` (None if there is none), without remote code."""
    directory = Path(directory)
    if not any((directory / name).is_file() for name in _TOKENIZER_FILES):
        return None
    for name in _TOKENIZER_JSON:  # a damaged file is named, not a JSONDecodeError from deep inside
        path = directory / name
        if path.is_file():
            try:
                json.loads(path.read_text(encoding="utf-8"))
            except (json.JSONDecodeError, UnicodeDecodeError) as err:
                raise NotADlmCheckpointError(
                    f"{path} (the tokenizer) is not valid JSON ({err}); the checkpoint was cut "
                    "short or damaged: copy it again, or save the model with its tokenizer again"
                ) from err
    try:
        tokenizer = AutoTokenizer.from_pretrained(directory, trust_remote_code=False)
    except (OSError, ValueError, KeyError, AttributeError, TypeError):
        fallback = getattr(transformers, _FALLBACK_TOKENIZERS.get(fmt, "PreTrainedTokenizerFast"))
        tokenizer = fallback.from_pretrained(directory)
    if tokenizer.mask_token is None and mask_token_id is not None:
        token = tokenizer.convert_ids_to_tokens(mask_token_id)
        if token is not None:
            tokenizer.mask_token = token
    return tokenizer


def _destination_ready(dst: Path) -> None:
    if dst.exists() and (not dst.is_dir() or any(dst.iterdir())):
        raise DlmUserError(f"{dst} already exists and is not empty; choose a new output directory")


def _write(model: DiffusionLM, tokenizer: PreTrainedTokenizerBase | None, dst: Path) -> None:
    tmp = dst.with_name(f".{dst.name}.converting")
    if tmp.exists():
        shutil.rmtree(tmp)
    try:
        model.save_pretrained(tmp, tokenizer)
        if dst.exists():
            dst.rmdir()
        tmp.rename(dst)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)


def _weights_size(src: Path) -> str:
    """What the weights of ``src`` are: "2 files, 15.2 GB" (MB below a gigabyte)."""
    files = weight_files(src)
    size = sum(path.stat().st_size for path in files)
    shown = f"{size / 1e9:,.1f} GB" if size >= 1e9 else f"{size / 1e6:,.1f} MB"
    return f"{len(files)} file{'s' if len(files) != 1 else ''}, {shown}"


def convert(
    src: str | os.PathLike,
    dst: str | os.PathLike,
    *,
    dtype: torch.dtype | None = None,
    progress: Callable[[str], object] | None = None,
) -> ConvertResult:
    """Write the checkpoint in ``src`` (any format ``detect_format`` knows) to ``dst`` as dlm.

    ``progress`` (None: nothing) is called with a line on each of ``CONVERT_STEPS`` as it
    starts: ``"read the weights (2 files, 15.2 GB)"``, then the other two by their names.
    """
    src, dst = Path(src), Path(dst)
    step = progress if progress is not None else (lambda what: None)
    _destination_ready(dst)
    fmt = detect_format(src)
    read, tokenize, write = CONVERT_STEPS
    step(f"{read} ({_weights_size(src)})")
    model = load_published(src, dtype=dtype)
    step(tokenize)
    tokenizer = load_tokenizer(src, fmt, model.config.mask_token_id)
    step(write)
    _write(model, tokenizer, dst)
    return ConvertResult(
        source=src,
        destination=dst,
        format=fmt,
        architecture=type(model.backbone).__name__,
        parameters=sum(p.numel() for p in model.backbone.parameters()),
        mask_token_id=model.config.mask_token_id,
        shift=model.config.shift,
        attention=model.config.attention,
        tokenizer=tokenizer is not None,
    )
