"""DiffuLLaMA (``diffusionfamily/diffullama``): Llama-2-7B adapted to masked diffusion.

The published model is an ordinary ``LlamaForCausalLM`` directory (``inf_diffullama.py`` opens
it with ``LlamaForCausalLM.from_pretrained`` and wraps it in ``DiscreteDiffusionModel``, which
turns attention bidirectional); the weights keep LLaMA's names. A checkpoint saved from the
wrapper itself has ``embed_tokens.weight`` / ``denoise_model.layers.N...`` / ``lm_head.weight``
instead; both load. DiffuLLaMA shifts and uses the existing token 811 as [MASK].

Since its weights are plain LLaMA, a directory is taken for DiffuLLaMA when it is a LLaMA
checkpoint that names a mask token: ``mask_token_id`` in ``config.json``, a mask token in the
saved tokenizer, or "diffullama" in ``_name_or_path``. A plain Llama without any of these is
not a diffusion model (wrap it with ``DiffusionLM.from_causal_lm`` instead).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from transformers import LlamaConfig, LlamaForCausalLM, PretrainedConfig, PreTrainedModel

from dlm.models.diffusion_lm import DiffusionConfig

from .base import (
    Family,
    Probe,
    RenameTable,
    first_id,
    renamed_by,
    rope_parameters,
    sampler_defaults,
    valid_id,
)

__all__ = ["DIFFULLAMA", "DIFFULLAMA_RENAMES", "diffullama_mask_id"]

DIFFULLAMA_MASK_ID = 811

#: LLaMA config fields copied into ``LlamaConfig`` (the names are LLaMA's own); ``rope_theta``
#: and ``rope_scaling`` go into ``rope_parameters``.
LLAMA_CONFIG_KEYS: tuple[str, ...] = (
    "hidden_size",
    "intermediate_size",
    "num_hidden_layers",
    "num_attention_heads",
    "num_key_value_heads",
    "head_dim",
    "hidden_act",
    "max_position_embeddings",
    "initializer_range",
    "rms_norm_eps",
    "attention_bias",
    "mlp_bias",
    "tie_word_embeddings",
    "pretraining_tp",
)

_LAYER = r"layers\.\d+\.(?:self_attn\.[qkvo]_proj|mlp\.(?:gate|up|down)_proj)\.(?:weight|bias)"
_NORM = r"layers\.\d+\.(?:input|post_attention)_layernorm\.weight|norm\.weight"

#: DiffuLLaMA weight name -> ``LlamaForCausalLM`` weight name (plain and wrapper layouts).
DIFFULLAMA_RENAMES: RenameTable = (
    (rf"model\.((?:{_LAYER})|(?:{_NORM})|embed_tokens\.weight)", r"model.\1"),
    (rf"denoise_model\.((?:{_LAYER})|(?:{_NORM}))", r"model.\1"),
    (r"embed_tokens\.weight", "model.embed_tokens.weight"),
    (r"lm_head\.weight", "lm_head.weight"),
)

#: ``inf_diffullama.py`` defaults: 64 steps, logits temperature 0.9, top-p 0.9, random order.
DIFFULLAMA_SAMPLER = {"steps": 64, "temperature": 0.9, "top_p": 0.9, "policy": "random"}


def diffullama_mask_id(probe: Probe) -> int | None:
    """The mask id named by the directory (config, tokenizer, model name), else None."""
    for candidate in (first_id(probe.config.get("mask_token_id")), probe.tokenizer_mask_id):
        if candidate is not None:
            return candidate
    if "diffullama" in str(probe.config.get("_name_or_path", "")).lower():
        return DIFFULLAMA_MASK_ID
    return None


def matches(probe: Probe) -> bool:
    if probe.has_weight(r"denoise_model\.layers\.\d+\..+"):
        return True
    llama = probe.model_type == "llama" or "LlamaForCausalLM" in probe.architectures
    return llama and diffullama_mask_id(probe) is not None


def backbone(
    probe: Probe, state: Mapping[str, torch.Tensor]
) -> tuple[type[PreTrainedModel], PretrainedConfig]:
    vocab = state["model.embed_tokens.weight"].shape[0]
    kwargs = {key: probe.config[key] for key in LLAMA_CONFIG_KEYS if key in probe.config}
    kwargs.setdefault("tie_word_embeddings", False)
    config = LlamaConfig(
        vocab_size=vocab,
        rope_parameters=rope_parameters(
            probe.config.get("rope_theta", 10000.0), probe.config.get("rope_scaling")
        ),
        attention_dropout=0.0,
        bos_token_id=valid_id(first_id(probe.config.get("bos_token_id")), vocab),
        eos_token_id=valid_id(first_id(probe.config.get("eos_token_id")), vocab),
        pad_token_id=valid_id(first_id(probe.config.get("pad_token_id")), vocab),
        use_cache=False,
        **kwargs,
    )
    return LlamaForCausalLM, config


def diffusion(probe: Probe, vocab: int) -> DiffusionConfig:
    mask = diffullama_mask_id(probe)
    return DiffusionConfig(
        mask_token_id=DIFFULLAMA_MASK_ID if mask is None else mask,
        shift=True,
        attention="bidirectional",
        pad_token_id=valid_id(first_id(probe.config.get("pad_token_id")), vocab),
        eos_token_id=valid_id(first_id(probe.config.get("eos_token_id")), vocab),
    )


def generation(probe: Probe) -> dict[str, Any]:
    return sampler_defaults(DIFFULLAMA_SAMPLER, probe.generation)


DIFFULLAMA = Family(
    name="diffullama",
    summary=(
        "DiffuLLaMA (a LLaMA checkpoint naming a mask token, or embed_tokens / "
        "denoise_model.layers.N...; mask 811, shift)"
    ),
    matches=matches,
    convert=renamed_by(DIFFULLAMA_RENAMES),
    backbone=backbone,
    diffusion=diffusion,
    generation=generation,
    embed_key="model.embed_tokens.weight",
    ignore=(r"(?:model|denoise_model)\.(?:layers\.\d+\.self_attn\.)?rotary_emb\.inv_freq",),
)
