"""The on-disk format of a ``dlm`` checkpoint, and its checks.

A checkpoint is an ordinary Hugging Face model folder (``config.json``, the weights) plus
``dlm_config.json``: the diffusion fields (``DiffusionConfig``). ``read_dlm_config`` reads that
file strictly (valid JSON object, no unknown or missing key, every field of its type and
range) and ``check_checkpoint_files`` checks, before any weight loads, that the backbone's
config and weight files are there and complete (a truncated safetensors file fails on its
header) and that the token ids lie inside the vocabulary. Each problem is one
``NotADlmCheckpointError`` naming the file and what to do.
"""

from __future__ import annotations

import json
import os
from dataclasses import MISSING, dataclass, fields
from pathlib import Path
from typing import Any

from dlm.errors import DlmUserError

from .attention import ATTENTION_MODES

__all__ = [
    "DLM_CONFIG_NAME",
    "DiffusionConfig",
    "NotADlmCheckpointError",
    "check_checkpoint_files",
    "check_safetensors",
    "read_dlm_config",
]

DLM_CONFIG_NAME = "dlm_config.json"


class NotADlmCheckpointError(DlmUserError):
    """Raised when a directory given as a ``dlm`` checkpoint is not one (or is damaged)."""


_DAMAGED = "the checkpoint is damaged: save or convert it again, or re-download it"
_CUT_SHORT = (
    "the checkpoint was cut short (an interrupted save, copy or download): copy or download "
    "it again, or retrain"
)
_INCOMPLETE = "the checkpoint is incomplete: copy the whole folder again, or retrain"
#: The weight files ``transformers`` reads from a model folder, in the order it looks.
_WEIGHT_FILES = (
    "model.safetensors.index.json",
    "model.safetensors",
    "pytorch_model.bin.index.json",
    "pytorch_model.bin",
)


def check_safetensors(path: str | os.PathLike) -> None:
    """Refuse a ``.safetensors`` file that is not complete (cut short, empty, not one).

    Opening reads only the header, which records where every tensor ends: a file shorter
    than that (a truncated save or download) fails here, before any weight is read.
    """
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(str(path), framework="pt"):
            pass
    except SafetensorError as err:
        raise NotADlmCheckpointError(
            f"{path} is not a complete safetensors file ({err}); {_CUT_SHORT}"
        ) from err


def _read_json(path: Path, what: str) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise NotADlmCheckpointError(
            f"{path} ({what}) is not valid JSON ({err}); {_DAMAGED}"
        ) from err
    except OSError as err:
        raise NotADlmCheckpointError(
            f"{path} ({what}) cannot be read ({err.strerror}); make it readable"
        ) from err


def _check_field(path: Path, name: str, value: Any, optional: bool) -> None:
    """One ``dlm_config.json`` field against its type and range."""
    if value is None:
        if optional:
            return
        raise NotADlmCheckpointError(f"{path}: {name} cannot be null; {_DAMAGED}")
    if name in ("mask_token_id", "pad_token_id", "eos_token_id", "anneal_steps"):
        ok = isinstance(value, int) and not isinstance(value, bool) and value >= 0
        want = (
            "a token id (a whole number >= 0)" if name != "anneal_steps" else "a whole number >= 0"
        )
    elif name == "format_version":
        ok, want = isinstance(value, int) and not isinstance(value, bool), "a whole number"
    elif name == "shift":
        ok, want = isinstance(value, bool), "true or false"
    elif name == "attention":
        ok, want = value in ATTENTION_MODES, "one of " + ", ".join(ATTENTION_MODES)
    elif name == "block_size":
        ok = isinstance(value, int) and not isinstance(value, bool) and value >= 1
        want = "a whole number >= 1 (the block length of block_causal attention), or null"
    elif name == "generation":
        ok, want = isinstance(value, dict), "a JSON object of sampler settings, or null"
    else:  # a field added to DiffusionConfig without a check here
        ok, want = True, ""
    if not ok:
        raise NotADlmCheckpointError(
            f"{path}: {name} must be {want}; got {value!r}: fix it, or save the checkpoint again"
        )


def read_dlm_config(path: str | os.PathLike) -> DiffusionConfig:
    """The ``DiffusionConfig`` in ``path`` (a ``dlm_config.json``), every field checked.

    Invalid JSON, a value that is not an object, an unknown or missing key, or a field of the
    wrong type or range is a ``NotADlmCheckpointError`` naming the file and the key.
    """
    path = Path(path)
    data = _read_json(path, "the diffusion fields")
    if not isinstance(data, dict):
        raise NotADlmCheckpointError(
            f"{path} must hold a JSON object of the diffusion fields; it holds a "
            f"{type(data).__name__}; {_DAMAGED}"
        )
    fields_ = {f.name: f for f in fields(DiffusionConfig)}
    unknown = sorted(set(data) - set(fields_))
    if unknown:
        raise NotADlmCheckpointError(
            f"{path} has unknown keys {', '.join(map(repr, unknown))} (known: "
            f"{', '.join(fields_)}); remove them, or upgrade dlm if a newer one wrote the file"
        )
    required = [
        n for n, f in fields_.items() if f.default is MISSING and f.default_factory is MISSING
    ]
    missing = [n for n in required if n not in data]
    if missing:
        raise NotADlmCheckpointError(
            f"{path} lacks the key {', '.join(map(repr, missing))}; {_DAMAGED}"
        )
    for name, value in data.items():
        _check_field(path, name, value, optional=fields_[name].default is None)
    newest = fields_["format_version"].default
    if data.get("format_version", newest) > newest:
        raise NotADlmCheckpointError(
            f"{path} has format_version {data['format_version']}, newer than this dlm reads "
            f"({newest}); upgrade dlm"
        )
    return DiffusionConfig(**data)


def check_checkpoint_files(directory: Path, config_path: Path, config: DiffusionConfig) -> None:
    """The backbone's ``config.json`` and weight files are there and complete, and the token
    ids of ``dlm_config.json`` lie inside its vocabulary; checked before any weight loads."""
    backbone_config = directory / "config.json"
    if not backbone_config.is_file():
        raise NotADlmCheckpointError(
            f"{directory} has {DLM_CONFIG_NAME} but no config.json (the backbone's config); "
            f"{_INCOMPLETE}"
        )
    hf = _read_json(backbone_config, "the backbone's config")
    if not isinstance(hf, dict) or not isinstance(hf.get("model_type"), str):
        raise NotADlmCheckpointError(
            f"{backbone_config} must be a JSON object with a model_type; {_DAMAGED}"
        )
    vocab = hf.get("vocab_size")
    if isinstance(vocab, int) and not isinstance(vocab, bool):
        for name in ("mask_token_id", "pad_token_id", "eos_token_id"):
            value = getattr(config, name)
            if value is not None and value >= vocab:
                raise NotADlmCheckpointError(
                    f"{config_path}: {name}={value} lies outside the model's vocabulary of "
                    f"{vocab} tokens (config.json vocab_size); set an id in [0, {vocab}) or "
                    "save the checkpoint again"
                )
    present = [name for name in _WEIGHT_FILES if (directory / name).is_file()]
    if not present:
        raise NotADlmCheckpointError(
            f"{directory} has no model.safetensors (the model's weights); {_INCOMPLETE}"
        )
    first = directory / present[0]
    if first.name == "model.safetensors":
        check_safetensors(first)
    elif first.name.endswith(".index.json"):
        index = _read_json(first, "the index of the weight shards")
        weight_map = index.get("weight_map") if isinstance(index, dict) else None
        if not isinstance(weight_map, dict) or not weight_map:
            raise NotADlmCheckpointError(f"{first} has no weight_map; {_DAMAGED}")
        for shard in sorted(set(map(str, weight_map.values()))):
            if not (directory / shard).is_file():
                raise NotADlmCheckpointError(
                    f"{directory} lacks the weight shard {shard} that {first.name} lists; "
                    f"{_INCOMPLETE}"
                )
            if shard.endswith(".safetensors"):
                check_safetensors(directory / shard)
    elif first.stat().st_size == 0:
        raise NotADlmCheckpointError(f"{first} is empty; {_CUT_SHORT}")


@dataclass
class DiffusionConfig:
    """The diffusion fields saved beside the backbone in ``dlm_config.json``."""

    mask_token_id: int
    shift: bool = True
    attention: str = "bidirectional"
    anneal_steps: int = 0
    pad_token_id: int | None = None
    eos_token_id: int | None = None
    #: ``block_causal`` only: tokens per block (bidirectional inside, causal across)
    block_size: int | None = None
    #: the sampler defaults this checkpoint was published with (``SamplerSettings`` fields);
    #: ``dlm.sampling.generate`` lays the caller's arguments over them
    generation: dict[str, Any] | None = None
    format_version: int = 1

    def __post_init__(self) -> None:
        if self.attention not in ATTENTION_MODES:
            raise DlmUserError(
                f"attention must be one of {', '.join(ATTENTION_MODES)}; got {self.attention!r}"
            )
        if self.attention == "block_causal":
            if self.block_size is None or self.block_size < 1:
                raise DlmUserError(
                    f"attention block_causal needs block_size, the tokens per block (>= 1); got "
                    f"{self.block_size!r}"
                )
        elif self.block_size is not None:
            raise DlmUserError(
                f"block_size is the block length of attention block_causal; this model's attention "
                f"is {self.attention}: drop block_size or set attention=block_causal"
            )

    @property
    def fill_token_id(self) -> int:
        """The id written into padding: the pad token, else EOS, else 0."""
        if self.pad_token_id is not None:
            return self.pad_token_id
        return self.eos_token_id if self.eos_token_id is not None else 0

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DiffusionConfig:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})
