"""DiffuGPT-S / -M (``diffusionfamily/diffugpt-s``, ``-m``): GPT-2 inside HKUNLP's wrapper.

The checkpoint is the state dict of DiffuLLaMA's ``DiscreteDiffusionModel`` (a
``PyTorchModelHubMixin``), which takes a ``GPT2LMHeadModel`` apart: the token embedding
``transformer.wte`` is stored as ``embed_tokens.weight``, the rest of the GPT-2 body as
``denoise_model.*`` (``denoise_model.wpe``, ``denoise_model.h.N.attn.c_attn`` ...,
``denoise_model.ln_f``) and the head as ``lm_head.weight`` (tied to the embedding, so either
name may be the one stored). ``config.json`` is the plain GPT-2 config of the base model.
The wrapper fills every block's causal ``attn.bias`` with True, i.e. attention is
bidirectional; DiffuGPT shifts.

The mask id is the tokenizer's mask token when one is saved beside the weights; otherwise it
follows the embedding size: DiffuGPT-M added ``[MASK]`` as token 50257 (50258 rows), DiffuGPT-S
reuses the existing token 10541 (50257 rows). A ``mask_token_id`` in ``config.json`` wins.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from transformers import GPT2Config, GPT2LMHeadModel, PretrainedConfig, PreTrainedModel

from dlm.models.diffusion_lm import DiffusionConfig

from .base import Family, Probe, RenameTable, first_id, renamed_by, sampler_defaults, valid_id

__all__ = ["DIFFUGPT", "DIFFUGPT_RENAMES", "diffugpt_mask_id"]

GPT2_VOCAB = 50257
DIFFUGPT_S_MASK_ID = 10541
DIFFUGPT_M_MASK_ID = 50257

#: GPT-2 config fields copied into ``GPT2Config`` (the names are GPT-2's own).
GPT2_CONFIG_KEYS: tuple[str, ...] = (
    "n_embd",
    "n_layer",
    "n_head",
    "n_inner",
    "activation_function",
    "layer_norm_epsilon",
    "initializer_range",
    "scale_attn_weights",
    "scale_attn_by_inverse_layer_idx",
    "reorder_and_upcast_attn",
)

#: DiffuGPT wrapper weight name -> ``GPT2LMHeadModel`` weight name.
DIFFUGPT_RENAMES: RenameTable = (
    (r"embed_tokens\.weight", "transformer.wte.weight"),
    (r"denoise_model\.(wpe\.weight)", r"transformer.\1"),
    (r"denoise_model\.(h\.\d+\.(?:ln_1|ln_2)\.(?:weight|bias))", r"transformer.\1"),
    (r"denoise_model\.(h\.\d+\.attn\.(?:c_attn|c_proj)\.(?:weight|bias))", r"transformer.\1"),
    (r"denoise_model\.(h\.\d+\.mlp\.(?:c_fc|c_proj)\.(?:weight|bias))", r"transformer.\1"),
    (r"denoise_model\.(ln_f\.(?:weight|bias))", r"transformer.\1"),
    (r"lm_head\.weight", "lm_head.weight"),
)

#: ``inf_diffugpt.py`` defaults: 64 steps, logits temperature 0.95, top-p 0.9, random order.
DIFFUGPT_SAMPLER = {"steps": 64, "temperature": 0.95, "top_p": 0.9, "policy": "random"}


def matches(probe: Probe) -> bool:
    return probe.has_weight(r"denoise_model\.h\.\d+\..+") and (
        probe.has_weight(r"embed_tokens\.weight") or probe.has_weight(r"lm_head\.weight")
    )


def backbone(
    probe: Probe, state: Mapping[str, torch.Tensor]
) -> tuple[type[PreTrainedModel], PretrainedConfig]:
    vocab = state["transformer.wte.weight"].shape[0]
    kwargs = {key: probe.config[key] for key in GPT2_CONFIG_KEYS if key in probe.config}
    config = GPT2Config(
        vocab_size=vocab,
        n_positions=state["transformer.wpe.weight"].shape[0],
        tie_word_embeddings=True,
        resid_pdrop=0.0,
        embd_pdrop=0.0,
        attn_pdrop=0.0,
        bos_token_id=valid_id(first_id(probe.config.get("bos_token_id")), vocab),
        eos_token_id=valid_id(first_id(probe.config.get("eos_token_id")), vocab),
        pad_token_id=valid_id(first_id(probe.config.get("pad_token_id")), vocab),
        use_cache=False,
        **kwargs,
    )
    return GPT2LMHeadModel, config


def diffugpt_mask_id(probe: Probe, vocab: int) -> int:
    """The mask id: ``config.json``, else the tokenizer's, else by the embedding size."""
    for candidate in (first_id(probe.config.get("mask_token_id")), probe.tokenizer_mask_id):
        if candidate is not None:
            return candidate
    return DIFFUGPT_M_MASK_ID if vocab > GPT2_VOCAB else DIFFUGPT_S_MASK_ID


def diffusion(probe: Probe, vocab: int) -> DiffusionConfig:
    return DiffusionConfig(
        mask_token_id=diffugpt_mask_id(probe, vocab),
        shift=True,
        attention="bidirectional",
        pad_token_id=valid_id(first_id(probe.config.get("pad_token_id")), vocab),
        eos_token_id=valid_id(first_id(probe.config.get("eos_token_id")), vocab),
    )


def generation(probe: Probe) -> dict[str, Any]:
    return sampler_defaults(DIFFUGPT_SAMPLER, probe.generation)


DIFFUGPT = Family(
    name="diffugpt",
    summary=(
        "DiffuGPT-S/M (GPT-2 weights as embed_tokens / denoise_model.h.N... / lm_head; "
        "mask 10541 (S) or 50257 (M), shift)"
    ),
    matches=matches,
    convert=renamed_by(DIFFUGPT_RENAMES),
    backbone=backbone,
    diffusion=diffusion,
    generation=generation,
    embed_key="transformer.wte.weight",
    tied_head=True,
    ignore=(r"denoise_model\.h\.\d+\.attn\.(?:masked_)?bias",),
)
