"""``DiffusionLM``: a Hugging Face causal-LM backbone plus the fields that make it a diffusion LM.

The backbone is any ``transformers`` causal LM that accepts a 4-D attention mask (GPT-2,
LLaMA, Qwen2, ...). The diffusion fields are the mask token, the ``shift`` flag (logits at
i - 1 predict token i, as DiffuGPT, DiffuLLaMA and Dream; position 0 keeps its own) and the
attention mode. ``forward`` returns logits already aligned with the tokens they predict, so
losses and samplers never deal with the shift themselves.

A checkpoint is an ordinary Hugging Face model directory plus ``dlm_config.json``; it loads
without ``trust_remote_code`` (the format and its checks: ``checkpoint_format.py``). Sampling lives one layer up (``dlm.sampling.generate`` /
``dlm.sampling.stream``), and published formats (Dream, LLaDA, ...) open through
``dlm.load_model`` (``dlm.checkpoints``), which sits above this module.
"""

from __future__ import annotations

import functools
import inspect
import json
import os
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch
from torch import nn
from transformers import AutoModelForCausalLM, PreTrainedModel, PreTrainedTokenizerBase

from dlm.atomic import OutputPathError, atomic_write_text
from dlm.errors import DlmUserError

from .attention import block_denoising_attention, build_attention, set_causal
from .backbones import max_positions
from .block_cache import BlockStepForward
from .cache import CACHE_MODES, CachedStepForward, FullStepForward
from .checkpoint_format import (
    DLM_CONFIG_NAME,
    DiffusionConfig,
    NotADlmCheckpointError,
    check_checkpoint_files,
    check_safetensors,
    read_dlm_config,
)
from .quiet import quiet_libraries

__all__ = [
    "DiffusionConfig",
    "DiffusionLM",
    "DLM_CONFIG_NAME",
    "NotADlmCheckpointError",
    "check_safetensors",
    "denoising_logits",
    "read_dlm_config",
    "shift_logits",
]


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


def denoising_logits(
    model: nn.Module,
    noisy: torch.Tensor,
    attention_mask: torch.Tensor | None,
    clean: torch.Tensor,
) -> torch.Tensor:
    """Aligned logits of a noisy copy of ``clean``, as the model was trained to denoise it.

    A block-causal model sees each block with its clean earlier blocks (``clean=``); every
    other model, and any module called as ``model(input_ids, attention_mask)``, just the
    noisy tokens.
    """
    config = getattr(getattr(model, "module", model), "config", None)
    if getattr(config, "attention", None) == "block_causal":
        return model(noisy, attention_mask, clean=clean)
    return model(noisy, attention_mask)


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
        if config.attention == "block_causal" and "cache" not in self.generation_defaults:
            # committed blocks never change what they see, so their keys and values are exact:
            # a block model samples with that cache unless its saved defaults say otherwise
            self.generation_defaults = {**self.generation_defaults, "cache": "prefix"}
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
        clean: torch.Tensor | None = None,
        block_size: int | None = None,
    ) -> torch.Tensor:
        """Aligned logits (B, L, V): ``logits[:, i]`` predicts token i.

        ``attention_mask`` is the (B, L) padding mask (1 = real token). ``anneal_ratio`` is
        the Bernoulli rate of the ``annealed`` mode (None means fully annealed, i.e.
        bidirectional, which is how an annealed model is sampled).

        A ``block_causal`` model denoises each block with the *clean* earlier blocks as
        context. Given ``clean`` (the (B, L) clean tokens of which ``input_ids`` is a noisy
        copy) it runs block diffusion's training forward over ``[input_ids ; clean]``
        (``block_denoising_forward``), every block in one pass; without it, ``input_ids`` is
        one canvas whose earlier blocks are already clean, as when sampling. ``block_size``
        overrides the model's (block-size annealing). Other modes ignore both.
        """
        self.check_length(input_ids.shape[1])
        block = self.config.block_size if block_size is None else block_size
        if self.config.attention == "block_causal" and clean is not None:
            return self.block_denoising_forward(input_ids, clean, attention_mask, block)
        ratio = 1.0 if anneal_ratio is None else anneal_ratio
        att = build_attention(
            self.config.attention,
            attention_mask,
            input_ids.shape[1],
            ratio=ratio,
            block_size=block,
            device=input_ids.device,
            generator=generator,
        )
        self.set_causal(att.causal)
        logits, _ = self.backbone_call(
            input_ids, self.backend_mask(att.attention_mask), att.position_ids
        )
        return shift_logits(logits, attention_mask) if self.config.shift else logits

    def block_denoising_forward(
        self,
        noisy: torch.Tensor,
        clean: torch.Tensor,
        attention_mask: torch.Tensor | None,
        block_size: int,
    ) -> torch.Tensor:
        """Aligned logits (B, L, V) of every block of ``noisy`` given the clean earlier blocks.

        One forward over ``[noisy ; clean]`` with ``block_denoising_attention``; the LM head
        runs on L gathered columns only. A token's logits come from its own noisy column, or
        with ``shift`` from the column before it: inside its block the noisy copy's, at a
        block start the clean copy's (the last token of the previous, clean block, which sees
        no later block: next-token prediction, as a cached sampler reads it), and at a row's
        first real token its own. Equals running each block alone after its clean prefix.
        """
        if noisy.shape != clean.shape:
            raise ValueError(f"noisy {tuple(noisy.shape)} and clean {tuple(clean.shape)} differ")
        batch, length = noisy.shape
        att = block_denoising_attention(
            attention_mask, length, block_size, batch=batch, device=noisy.device
        )
        self.set_causal(False)
        columns = torch.arange(length, device=noisy.device).expand(batch, -1)
        if self.config.shift:
            positions = att.position_ids[:, :length]
            first_real = positions == 0
            if attention_mask is not None:
                first_real &= attention_mask.bool()
            block_start = positions % block_size == 0
            columns = torch.where(block_start, columns - 1 + length, columns - 1)
            columns = torch.where(first_real, torch.arange(length, device=noisy.device), columns)
            columns = columns.clamp(min=0)  # left padding: read and never used
        ids = torch.cat([noisy, clean], dim=1)
        return self.row_head_logits(
            ids, self.backend_mask(att.attention_mask), att.position_ids, columns
        )

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
    ) -> FullStepForward | CachedStepForward | BlockStepForward:
        """The step forward a sampler calls for one canvas layout (see ``dlm.models.cache``).

        ``cache`` is ``none`` (the whole canvas each step, exact; ``compile`` replays it as a
        CUDA graph on a GPU), ``prefix`` or ``dual`` (Fast-dLLM's caches, refreshed at each
        block start). A block-causal model's ``prefix`` cache is exact and never refreshed
        (``dlm.models.block_cache``). Every kind runs the LM head only on the columns a step
        reads.
        """
        if cache not in CACHE_MODES:
            raise DlmUserError(f"unknown cache {cache!r}; choose one of: {', '.join(CACHE_MODES)}")
        if self.config.attention == "block_causal":
            if compile:
                raise DlmUserError(
                    "compile=True replays a full-attention canvas of one shape; a block-causal "
                    "model's forward grows block by block: drop compile"
                )
            return BlockStepForward(
                self, attention_mask, length, self.device, prompt_length, batch, cache=cache
            )
        if cache == "none":
            return FullStepForward(self, attention_mask, length, self.device, compile=compile)
        if compile:
            raise DlmUserError(
                "compile=True needs cache='none' (a static-shape canvas); the caches change "
                "shape per block"
            )
        return CachedStepForward(
            self,
            attention_mask,
            length,
            self.device,
            prompt_length,
            batch,
            dual=cache == "dual",
            window_at_block=window_at_block,
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

    def row_head_logits(
        self,
        input_ids: torch.Tensor,
        mask: torch.Tensor | None,
        positions: torch.Tensor | None,
        columns: torch.Tensor,
    ) -> torch.Tensor:
        """Raw backbone logits (B, K, V) at each row's own output columns ``columns`` (B, K).

        The backbone's body runs once over the batch and the LM head only on the B x K
        gathered hidden states, so rows that read different columns (a server's ragged batch,
        each row in its own block) never make a B x L x V tensor. Same numbers as
        ``head_logits`` up to the floating point of a different batch shape.
        """
        embeds = self.backbone.get_input_embeddings()(input_ids)
        out = self.backbone.base_model(
            inputs_embeds=embeds, attention_mask=mask, position_ids=positions, use_cache=False
        )
        hidden = out.last_hidden_state
        picked = hidden.gather(1, columns.unsqueeze(-1).expand(-1, -1, hidden.shape[-1]))
        return self.backbone.get_output_embeddings()(picked)

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
        # The embeddings are looked up here and handed over as ``inputs_embeds`` (what every
        # backbone does first with ``input_ids``): GPT-2 would otherwise test the canvas for
        # padding on every call, a host sync per forward and a warning dlm's canvases (padding
        # after an EOS, no attention mask) trip by design.
        kwargs: dict[str, Any] = {
            "inputs_embeds": self.backbone.get_input_embeddings()(input_ids),
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
        block_size: int | None = None,
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
            block_size=block_size,
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
        with quiet_libraries():
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
        check_checkpoint_files(directory, config_path, config)
        # transformers' load report goes quiet: a missing or mis-shaped weight is refused
        # below as one line (it would otherwise print a table and, for a shape, raise)
        with quiet_libraries():
            backbone, info = AutoModelForCausalLM.from_pretrained(
                directory,
                attn_implementation="sdpa",
                dtype=dtype,
                output_loading_info=True,
                ignore_mismatched_sizes=True,
            )
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
