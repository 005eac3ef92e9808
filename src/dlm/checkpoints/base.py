"""What every published-checkpoint family shares: the probe of a directory and the family record.

A :class:`Probe` is what detection looks at, read without loading any tensor: ``config.json``,
``generation_config.json``, the weight names (safetensors headers or index files) and, when a
tokenizer is saved beside the model, the id of its mask token.

A :class:`Family` says how one published layout maps onto a native ``transformers``
architecture: whether a probe is of this family, a renaming table for the weights (ordered
``(regex, replacement)`` rules applied with ``re.fullmatch``; a name that no rule and no
ignore pattern matches is an error, so nothing is dropped silently), the backbone config built
from the source config and the loaded weights, the diffusion fields, and the family's
sampler defaults expressed as :func:`dlm.sampling.generate` keyword arguments.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from transformers import PretrainedConfig, PreTrainedModel

from dlm.models.diffusion_lm import DiffusionConfig, NotADlmCheckpointError

__all__ = [
    "Family",
    "Probe",
    "ALG_TO_POLICY",
    "RenameTable",
    "UnsupportedCheckpointError",
    "first_id",
    "read_json",
    "rename",
    "renamed_by",
    "rope_parameters",
    "sampler_defaults",
    "IDENTIFICATION_FIELDS",
    "QWEN2_FIELDS",
    "QWEN_READ_FIELDS",
    "present_fields",
    "qwen_config",
    "token_id",
    "tokenizer_mask_id",
    "valid_id",
]

#: Ordered ``(pattern, replacement)`` rules; the first pattern that fully matches wins.
RenameTable = Sequence[tuple[str, str]]


class UnsupportedCheckpointError(NotADlmCheckpointError):
    """A recognised family whose config uses a feature the native architecture lacks."""


def read_json(path: Path) -> dict[str, Any]:
    """The JSON object in ``path``, or ``{}`` when the file is absent."""
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise NotADlmCheckpointError(f"{path} is not valid JSON: {err}") from err
    return data if isinstance(data, dict) else {}


def first_id(value: Any) -> int | None:
    """A token id from a config value that may be an int, a list of ints or absent."""
    if isinstance(value, list):
        value = value[0] if value else None
    return int(value) if isinstance(value, int) and not isinstance(value, bool) else None


def valid_id(value: int | None, vocab_size: int) -> int | None:
    """``value`` when it is an id of the vocabulary, else None."""
    return value if value is not None and 0 <= value < vocab_size else None


@dataclass(frozen=True)
class Probe:
    """The cheap facts about a directory that detection and loading decide on."""

    directory: Path
    config: dict[str, Any]
    generation: dict[str, Any]
    weight_names: tuple[str, ...]
    files: tuple[str, ...]
    tokenizer_mask_id: int | None = None

    @property
    def model_type(self) -> str:
        return str(self.config.get("model_type", ""))

    @property
    def architectures(self) -> tuple[str, ...]:
        return tuple(str(a) for a in self.config.get("architectures") or ())

    @property
    def auto_map(self) -> tuple[str, ...]:
        """The ``module.Class`` references of ``auto_map`` (remote-code pointers)."""
        values: list[str] = []
        for value in (self.config.get("auto_map") or {}).values():
            values.extend(value if isinstance(value, list) else [value])
        return tuple(str(v) for v in values if v)

    def has_weight(self, pattern: str) -> bool:
        """Whether some weight name fully matches the regular expression ``pattern``."""
        compiled = re.compile(pattern)
        return any(compiled.fullmatch(name) for name in self.weight_names)


@dataclass(frozen=True)
class Family:
    """One published checkpoint layout and its mapping onto a native architecture.

    ``convert`` turns one source tensor into native ``(name, tensor)`` pairs (None: no rule
    applies; names matching an ``ignore`` pattern, such as cached rotary tables, are dropped
    on purpose); ``backbone`` gives the native model class and config from the probe and the
    already renamed weights; ``diffusion`` the diffusion fields given the vocabulary size;
    ``generation`` the sampler defaults; ``check`` refuses, before anything is loaded, a
    config the native model cannot express. ``embed_key`` / ``head_key`` are the native
    names of the token embedding and the output head; with ``tied_head`` the two are always
    one tensor and the file may store it under either name.
    """

    name: str
    summary: str
    matches: Callable[[Probe], bool]
    convert: Callable[[Probe, str, torch.Tensor], Iterable[tuple[str, torch.Tensor]] | None]
    backbone: Callable[
        [Probe, Mapping[str, torch.Tensor]], tuple[type[PreTrainedModel], PretrainedConfig]
    ]
    diffusion: Callable[[Probe, int], DiffusionConfig]
    generation: Callable[[Probe], dict[str, Any]]
    embed_key: str
    head_key: str = "lm_head.weight"
    tied_head: bool = False
    ignore: tuple[str, ...] = field(default=())
    check: Callable[[Probe], None] = field(default=lambda probe: None)


def rename(name: str, table: RenameTable) -> str | None:
    """The native name of ``name`` under the first matching rule of ``table``, else None."""
    for pattern, replacement in table:
        match = re.fullmatch(pattern, name)
        if match:
            return match.expand(replacement)
    return None


def renamed_by(
    table: RenameTable,
) -> Callable[[Probe, str, torch.Tensor], list[tuple[str, torch.Tensor]] | None]:
    """A ``Family.convert`` that only renames, by ``table``."""

    def convert(probe: Probe, name: str, tensor: torch.Tensor) -> list | None:
        native = rename(name, table)
        return None if native is None else [(native, tensor)]

    return convert


def _mask_token_text(directory: Path) -> str | None:
    for filename in ("special_tokens_map.json", "tokenizer_config.json"):
        token = read_json(directory / filename).get("mask_token")
        if isinstance(token, dict):
            token = token.get("content")
        if isinstance(token, str) and token:
            return token
    return None


def _token_ids(directory: Path) -> Iterable[tuple[str, int]]:
    """``(token, id)`` pairs from the tokenizer files, added tokens first."""
    decoder = read_json(directory / "tokenizer_config.json").get("added_tokens_decoder") or {}
    for key, entry in decoder.items():
        if isinstance(entry, dict) and str(key).isdigit():
            yield str(entry.get("content")), int(key)
    tokenizer = read_json(directory / "tokenizer.json")
    for entry in tokenizer.get("added_tokens") or ():
        yield str(entry.get("content")), int(entry.get("id", -1))
    yield from read_json(directory / "added_tokens.json").items()
    vocab = (tokenizer.get("model") or {}).get("vocab")
    if isinstance(vocab, dict):
        yield from vocab.items()
    yield from read_json(directory / "vocab.json").items()


def token_id(directory: Path, text: str) -> int | None:
    """The id of the token ``text`` in the tokenizer files saved in ``directory`` (no loading)."""
    for token, found in _token_ids(directory):
        if token == text and isinstance(found, int) and found >= 0:
            return found
    return None


def tokenizer_mask_id(directory: Path) -> int | None:
    """The id of the saved tokenizer's mask token, read from its JSON files (no loading)."""
    text = _mask_token_text(directory)
    return None if text is None else token_id(directory, text)


#: ``Qwen2Config``'s own field names that Qwen-derived sources (Dream, Fast-dLLM v2, SDAR) keep.
QWEN2_FIELDS: tuple[str, ...] = (
    "hidden_size",
    "intermediate_size",
    "num_hidden_layers",
    "num_attention_heads",
    "num_key_value_heads",
    "hidden_act",
    "max_position_embeddings",
    "initializer_range",
    "rms_norm_eps",
    "tie_word_embeddings",
    "use_sliding_window",
    "sliding_window",
    "max_window_layers",
    "attention_dropout",
)


#: What :func:`qwen_config` reads besides the mapped fields (the vocabulary comes from the
#: embedding, the pad id from the caller).
QWEN_READ_FIELDS: tuple[str, ...] = (
    "rope_theta",
    "rope_scaling",
    "bos_token_id",
    "eos_token_id",
    "pad_token_id",
    "vocab_size",
)

#: ``config.json`` fields that change no maths of the forward: identification and storage.
IDENTIFICATION_FIELDS: tuple[str, ...] = (
    "model_type",
    "architectures",
    "auto_map",
    "torch_dtype",
    "transformers_version",
    "use_cache",
)


def qwen_config(
    config_class: type[PretrainedConfig],
    probe: Probe,
    state: Mapping[str, torch.Tensor],
    fields: Iterable[str],
    pad_token_id: int | None,
) -> PretrainedConfig:
    """A native Qwen2/Qwen3 config from a Qwen-derived source that keeps Qwen's field names:
    the ``fields`` it sets, its rotary base and scaling, its special ids where they are in the
    vocabulary (read from the embedding), and no cache (dlm's step forward owns caching)."""
    vocab = state["model.embed_tokens.weight"].shape[0]
    return config_class(
        vocab_size=vocab,
        rope_parameters=rope_parameters(
            probe.config.get("rope_theta", 10000.0), probe.config.get("rope_scaling")
        ),
        bos_token_id=valid_id(first_id(probe.config.get("bos_token_id")), vocab),
        eos_token_id=valid_id(first_id(probe.config.get("eos_token_id")), vocab),
        pad_token_id=valid_id(pad_token_id, vocab),
        use_cache=False,
        **present_fields(probe.config, fields),
    )


def present_fields(config: Mapping[str, Any], keys: Iterable[str]) -> dict[str, Any]:
    """The ``keys`` that ``config`` sets, as native-config keyword arguments (same names).

    What a config leaves out takes the native class's default, which is the source class's
    too for a family whose config class copies the native one (Fast-dLLM v2, SDAR).
    """
    return {key: config[key] for key in keys if key in config}


#: Source sampler algorithm names -> ``dlm.sampling`` policies (Dream's ``alg`` values).
ALG_TO_POLICY = {
    "origin": "random",
    "maskgit_plus": "confidence",
    "topk_margin": "margin",
    "entropy": "entropy",
    "low_confidence": "confidence",
    "random": "random",
}

_GENERATION_KEYS = {
    "temperature": "temperature",
    "top_p": "top_p",
    "top_k": "top_k",
    "steps": "steps",
    "eps": "eps",
    "max_new_tokens": "max_new_tokens",
    "alg_temp": "policy_temperature",
}


def sampler_defaults(family: Mapping[str, Any], generation: Mapping[str, Any]) -> dict[str, Any]:
    """``dlm.sampling.generate`` keyword defaults: the family's, then ``generation_config.json``.

    Dream's ``alg`` becomes ``policy``; ``alg_temp`` becomes ``policy_temperature`` (None = 0).
    Keys the sampler has no equivalent for are left out.
    """
    out = dict(family)
    for source, target in _GENERATION_KEYS.items():
        if source in generation:
            out[target] = generation[source]
    alg = generation.get("alg", generation.get("remasking"))
    if alg in ALG_TO_POLICY:
        out["policy"] = ALG_TO_POLICY[alg]
    if out.get("policy_temperature") is None and "policy_temperature" in out:
        out["policy_temperature"] = 0.0
    return out


def rope_parameters(theta: float, scaling: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """transformers' ``rope_parameters`` from a source's ``rope_theta`` and ``rope_scaling``.

    Older configs name the scaling kind ``type``; it becomes ``rope_type``.
    """
    params: dict[str, Any] = {"rope_type": "default"}
    if scaling:
        params.update({k: v for k, v in scaling.items() if k != "type"})
        params["rope_type"] = scaling.get("rope_type", scaling.get("type", "default"))
    params["rope_theta"] = float(theta)
    return params
