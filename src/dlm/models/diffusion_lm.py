"""``DiffusionLM``: a Hugging Face causal-LM backbone plus the fields that make it a diffusion LM.

The backbone is any ``transformers`` causal LM that accepts a 4-D attention mask (GPT-2,
LLaMA, Qwen2, ...). The diffusion fields are the mask token, the ``shift`` flag (logits at
i - 1 predict token i, as DiffuGPT, DiffuLLaMA and Dream; position 0 keeps its own) and the
attention mode. ``forward`` returns logits already aligned with the tokens they predict, so
losses and samplers never deal with the shift themselves.

A checkpoint is an ordinary Hugging Face model directory plus ``dlm_config.json``; it loads
without ``trust_remote_code``. Sampling lives one layer up (``dlm.sampling.generate`` /
``dlm.sampling.stream``), and published formats (Dream, LLaDA, ...) open through
``dlm.load_model`` (``dlm.checkpoints``), which sits above this module.
"""

from __future__ import annotations

import functools
import inspect
import json
import os
from collections.abc import Callable
from dataclasses import MISSING, asdict, dataclass, fields
from pathlib import Path
from typing import Any

import torch
from torch import nn
from transformers import AutoModelForCausalLM, PreTrainedModel, PreTrainedTokenizerBase
from transformers.utils import logging as hf_logging

from dlm.atomic import OutputPathError, atomic_write_text
from dlm.errors import DlmUserError

from .attention import ATTENTION_MODES, build_attention, set_causal
from .backbones import max_positions
from .cache import CACHE_MODES, CachedStepForward, FullStepForward

__all__ = [
    "DiffusionConfig",
    "DiffusionLM",
    "DLM_CONFIG_NAME",
    "NotADlmCheckpointError",
    "check_safetensors",
    "read_dlm_config",
    "shift_logits",
]

DLM_CONFIG_NAME = "dlm_config.json"


def shift_logits(logits: torch.Tensor, attention_mask: torch.Tensor | None = None) -> torch.Tensor:
    """Move logits one position right: the output at i - 1 predicts token i.

    The first real token of each row (position 0, or the first after left padding) keeps
    its own logits, so padded and unpadded rows agree on every real token.
    """
    shifted = torch.cat([logits[:, :1], logits[:, :-1]], dim=1)
    if attention_mask is None:
        return shifted
    valid = attention_mask.bool()
    before = torch.cat([torch.zeros_like(valid[:, :1]), valid[:, :-1]], dim=1)
    first_real = valid & ~before
    return torch.where(first_real.unsqueeze(-1), logits, shifted)


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


def _check_checkpoint_files(directory: Path, config_path: Path, config: DiffusionConfig) -> None:
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
    #: the sampler defaults this checkpoint was published with (``SamplerSettings`` fields);
    #: ``dlm.sampling.generate`` lays the caller's arguments over them
    generation: dict[str, Any] | None = None
    format_version: int = 1

    def __post_init__(self) -> None:
        if self.attention not in ATTENTION_MODES:
            raise DlmUserError(
                f"attention must be one of {', '.join(ATTENTION_MODES)}; got {self.attention!r}"
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


class DiffusionLM(nn.Module):
    """A masked diffusion LM (or, with ``attention="causal"``, its AR twin) around an HF backbone."""

    def __init__(self, backbone: PreTrainedModel, config: DiffusionConfig) -> None:
        super().__init__()
        vocab = backbone.get_input_embeddings().num_embeddings
        for name in ("mask_token_id", "pad_token_id", "eos_token_id"):
            value = getattr(config, name)
            if value is not None and not 0 <= value < vocab:
                raise DlmUserError(
                    f"{name}={value} lies outside the backbone's vocabulary of {vocab} tokens; "
                    f"pick an id in [0, {vocab}) or add the token and resize the embeddings "
                    "(DiffusionLM.from_causal_lm(..., mask_token='[MASK]') does both)"
                )
        self.backbone = backbone
        self.config = config
        self._causal_state: bool | None = None
        # the attention mode is set here, once: every public forward is bidirectional unless
        # the model is an AR twin (an annealed model's training forward passes its own mask)
        self.set_causal(self.is_autoregressive)

    # ------------------------------------------------------------------ properties
    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    @property
    def vocab_size(self) -> int:
        return self.backbone.get_input_embeddings().num_embeddings

    @property
    def max_positions(self) -> int | None:
        return max_positions(self.backbone.config)

    @property
    def generation_defaults(self) -> dict[str, Any]:
        """The checkpoint's saved sampler defaults (``{}`` when it has none)."""
        return dict(self.config.generation or {})

    @generation_defaults.setter
    def generation_defaults(self, values: dict[str, Any] | None) -> None:
        self.config.generation = dict(values) if values else None

    @property
    def is_autoregressive(self) -> bool:
        return self.config.attention == "causal"

    # ------------------------------------------------------------------ forward
    def set_causal(self, causal: bool) -> None:
        """Run the backbone's attention modules causally (AR) or bidirectionally."""
        if self._causal_state is not causal:
            set_causal(self.backbone, causal)
            self._causal_state = causal

    def check_length(self, length: int) -> None:
        limit = self.max_positions
        if limit is not None and length > limit:
            raise DlmUserError(
                f"sequence of {length} tokens exceeds the model's {limit} positions; "
                "shorten the prompt or max_new_tokens, or use a model with more positions"
            )

    def backend_mask(self, mask: torch.Tensor | None) -> torch.Tensor | None:
        """Boolean masks for SDPA; an additive float mask for eager attention."""
        if mask is None or getattr(self.backbone.config, "_attn_implementation", "sdpa") != "eager":
            return mask
        dtype = self.backbone.get_input_embeddings().weight.dtype
        return torch.zeros(mask.shape, dtype=dtype, device=mask.device).masked_fill(
            ~mask, torch.finfo(dtype).min
        )

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        *,
        anneal_ratio: float | None = None,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        """Aligned logits (B, L, V): ``logits[:, i]`` predicts token i.

        ``attention_mask`` is the (B, L) padding mask (1 = real token). ``anneal_ratio`` is
        the Bernoulli rate of the ``annealed`` mode (None means fully annealed, i.e.
        bidirectional, which is how an annealed model is sampled).
        """
        self.check_length(input_ids.shape[1])
        ratio = 1.0 if anneal_ratio is None else anneal_ratio
        att = build_attention(
            self.config.attention,
            attention_mask,
            input_ids.shape[1],
            ratio=ratio,
            device=input_ids.device,
            generator=generator,
        )
        self.set_causal(att.causal)
        logits, _ = self.backbone_call(
            input_ids, self.backend_mask(att.attention_mask), att.position_ids
        )
        return shift_logits(logits, attention_mask) if self.config.shift else logits

    def step_forward(
        self,
        attention_mask: torch.Tensor | None,
        length: int,
        *,
        prompt_length: int,
        batch: int,
        cache: str = "none",
        compile: bool = False,
        window_at_block: bool = False,
    ) -> FullStepForward | CachedStepForward:
        """The step forward a sampler calls for one canvas layout (see ``dlm.models.cache``).

        ``cache`` is ``none`` (the whole canvas each step, exact; ``compile`` replays it as a
        CUDA graph on a GPU), ``prefix`` or ``dual`` (Fast-dLLM's caches, refreshed at each
        block start). Every kind runs the LM head only on the columns a step reads.
        """
        if cache not in CACHE_MODES:
            raise DlmUserError(f"unknown cache {cache!r}; choose one of: {', '.join(CACHE_MODES)}")
        if cache == "none":
            return FullStepForward(self, attention_mask, length, self.device, compile=compile)
        if compile:
            raise DlmUserError(
                "compile=True needs cache='none' (a static-shape canvas); the caches change "
                "shape per block"
            )
        return CachedStepForward(
            self, attention_mask, length, self.device, prompt_length, batch,
            dual=cache == "dual", window_at_block=window_at_block,
        )

    def head_logits(
        self,
        input_ids: torch.Tensor,
        mask: torch.Tensor | None,
        positions: torch.Tensor | None,
        keep: torch.Tensor,
    ) -> torch.Tensor:
        """Raw backbone logits at output columns ``keep`` only (the LM head runs nowhere else)."""
        logits, _ = self.backbone_call(input_ids, mask, positions, logits_to_keep=keep)
        return logits

    @functools.cached_property
    def compiled_head_logits(self) -> Callable[..., torch.Tensor]:
        """``head_logits`` through ``torch.compile(mode="reduce-overhead")``, kept on the model."""
        return torch.compile(self.head_logits, mode="reduce-overhead", dynamic=False)

    def backbone_call(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        position_ids: torch.Tensor | None = None,
        *,
        cache: Any = None,
        use_cache: bool = False,
        logits_to_keep: torch.Tensor | int = 0,
    ) -> tuple[torch.Tensor, Any]:
        """Raw (unshifted) backbone logits and, with ``use_cache``, the key/value cache.

        ``logits_to_keep`` (a 1-D tensor of output columns, or 0 for all) limits where the LM
        head runs.
        """
        kwargs: dict[str, Any] = {
            "input_ids": input_ids,
            "attention_mask": attention_mask,
            "position_ids": position_ids,
            "use_cache": use_cache,
        }
        if not (isinstance(logits_to_keep, int) and logits_to_keep == 0):
            kwargs["logits_to_keep"] = logits_to_keep
        if cache is not None:
            kwargs[self._cache_argument] = cache
        out = self.backbone(**kwargs)
        new_cache = getattr(out, "cache", None) if use_cache else None
        if use_cache and new_cache is None:
            new_cache = getattr(out, "past_key_values", None)
        return out.logits, new_cache

    @functools.cached_property
    def _cache_argument(self) -> str:
        """transformers renamed ``past_key_values`` to ``cache``; use whichever the backbone takes."""
        params = inspect.signature(self.backbone.forward).parameters
        return "cache" if "cache" in params else "past_key_values"

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_causal_lm(
        cls,
        backbone: PreTrainedModel,
        tokenizer: PreTrainedTokenizerBase | None = None,
        *,
        mask_token: int | str = "[MASK]",
        shift: bool = True,
        attention: str = "bidirectional",
        anneal_steps: int = 0,
    ) -> DiffusionLM:
        """Wrap a causal LM, choosing an existing mask id or adding a new mask token.

        ``mask_token`` as an int is an existing vocabulary id; as a string it is looked up in
        the tokenizer and, when absent, added as a special token with the embeddings resized.
        """
        if isinstance(mask_token, int):
            mask_id = mask_token
        else:
            if tokenizer is None:
                raise DlmUserError(
                    "a mask token given as text needs the tokenizer; pass tokenizer=..."
                )
            mask_id = tokenizer.convert_tokens_to_ids(mask_token)
            if mask_id is None or mask_id == tokenizer.unk_token_id:
                tokenizer.add_special_tokens({"mask_token": mask_token})
                mask_id = tokenizer.convert_tokens_to_ids(mask_token)
            if tokenizer.mask_token is None:
                tokenizer.mask_token = mask_token
            if mask_id >= backbone.get_input_embeddings().num_embeddings:
                backbone.resize_token_embeddings(len(tokenizer))
        pad_id = tokenizer.pad_token_id if tokenizer is not None else None
        eos_id = tokenizer.eos_token_id if tokenizer is not None else None
        config = DiffusionConfig(
            mask_token_id=int(mask_id),
            shift=shift,
            attention=attention,
            anneal_steps=anneal_steps,
            pad_token_id=pad_id,
            eos_token_id=eos_id,
        )
        return cls(backbone, config)

    # ------------------------------------------------------------------ persistence
    def save_pretrained(
        self, directory: str | os.PathLike, tokenizer: PreTrainedTokenizerBase | None = None
    ) -> None:
        """Write the backbone (HF format, safetensors), ``dlm_config.json`` and the tokenizer."""
        directory = Path(directory)
        if directory.exists() and not directory.is_dir():
            raise OutputPathError(f"{directory} is a file; save_pretrained needs a folder path")
        directory.mkdir(parents=True, exist_ok=True)
        self.backbone.config.is_causal = self.is_autoregressive
        self.backbone.save_pretrained(directory, safe_serialization=True)
        atomic_write_text(
            directory / DLM_CONFIG_NAME, json.dumps(asdict(self.config), indent=2) + "\n"
        )
        if tokenizer is not None:
            tokenizer.save_pretrained(directory)

    @classmethod
    def from_pretrained(
        cls,
        directory: str | os.PathLike,
        *,
        dtype: torch.dtype | None = None,
        device: torch.device | str | None = None,
    ) -> DiffusionLM:
        """Open a directory written by ``save_pretrained`` (or by ``dlm train``).

        A published Dream, LLaDA, DiffuGPT or DiffuLLaMA checkpoint is not a dlm directory:
        open it with ``dlm.load_model(path)``, which reads both, or convert it once with
        ``dlm convert``.
        """
        directory = Path(directory)
        if not directory.is_dir():
            raise NotADlmCheckpointError(
                f"{directory} is not a directory; pass the folder a dlm checkpoint was saved to"
            )
        config_path = directory / DLM_CONFIG_NAME
        if not config_path.is_file():
            raise NotADlmCheckpointError(
                f"{directory} has no {DLM_CONFIG_NAME}, so it is not a dlm checkpoint; for a "
                "published checkpoint (Dream, LLaDA, DiffuGPT, DiffuLLaMA) use "
                "dlm.load_model(path), or write a dlm copy with `dlm convert`"
            )
        config = read_dlm_config(config_path)
        _check_checkpoint_files(directory, config_path, config)
        # transformers' load report goes quiet: a missing or mis-shaped weight is refused
        # below as one line (it would otherwise print a table and, for a shape, raise)
        verbosity = hf_logging.get_verbosity()
        hf_logging.set_verbosity_error()
        try:
            backbone, info = AutoModelForCausalLM.from_pretrained(
                directory,
                attn_implementation="sdpa",
                dtype=dtype,
                output_loading_info=True,
                ignore_mismatched_sizes=True,
            )
        finally:
            hf_logging.set_verbosity(verbosity)
        for key in ("missing_keys", "mismatched_keys"):
            # mismatched keys come as (name, checkpoint shape, model shape)
            names = sorted(str(k[0] if isinstance(k, tuple) else k) for k in info.get(key) or ())
            if names:
                shown = ", ".join(names[:4]) + (
                    f" (+{len(names) - 4} more)" if len(names) > 4 else ""
                )
                raise NotADlmCheckpointError(
                    f"{directory}: the weights file does not match config.json ({key.replace('_', ' ')}: "
                    f"{shown}); the weights belong to another model: save the checkpoint again"
                )
        model = cls(backbone, config)
        if device is not None:
            model.to(device)
        return model.eval()
