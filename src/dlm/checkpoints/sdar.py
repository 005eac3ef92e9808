"""SDAR (``JetLM/SDAR-*-Chat``, JetAstra/SDAR): block-diffusion Qwen3, without remote code.

Recognised by ``model_type: "sdar"``, the ``SDARForCausalLM`` architecture or an ``auto_map``
pointing at ``modeling_sdar``. ``modeling_sdar.py`` is Qwen3's modelling file with the causal
mask replaced by a block-causal one (bidirectional inside a block of ``block_size`` tokens,
causal across blocks) and a masked-diffusion loss: the same module tree and weight names
(``model.layers.N.self_attn.{q,k,v,o}_proj``, the per-head ``q_norm``/``k_norm`` RMSNorms before
rotary, ``mlp.{gate,up,down}_proj``, the two layer norms, ``model.norm``, an untied
``lm_head``), so the weights map one to one onto ``Qwen3ForCausalLM`` with dlm's
``attention="block_causal"``. SDAR does not shift: the output at position i predicts the token
at i (its training scores the masked noisy positions against the labels at the same index).
Its training forward gives the clean copy the noisy copy's positions, as dlm's does.

``SDARConfig`` copies ``Qwen3Config``: a field the file leaves out takes Qwen3's default. The
training-only fields (``attn_implementation`` and the kernel switches ``fuse_cross_entropy``,
``micro_forward``, ``use_deepep``, ``ep_size``, ``skip_checkpoint``, ``debug``) change no maths and
are ignored (:data:`SDAR_IGNORED`).

The block size is ``config.json``'s ``block_size`` when it is there (the training copies carry
it); the hub's configs leave it out, so it is then read from a ``-b<N>`` suffix of the directory
name (``SDAR-8B-Chat-b32``, the larger-block SFT variants), else SDAR's 4, the block of its
continued pretraining and of its published results. The mask token is ``config.json``'s
``mask_token_id``, else the saved tokenizer's ``mask_token`` (``<|MASK|>``), else 151669.

Sampler defaults are SDAR's published setting (``generate.py``, README): blocks of the model's
block size, one token per step in confidence order (``low_confidence_static``), greedy, and the
exact cache of committed blocks. ``generation_config.json``'s Qwen chat temperature and top-p are
not SDAR's sampler's (its ``block_diffusion_generate`` reads only the stop ids from it), so they
are not taken. SDAR's ``low_confidence_dynamic`` is dlm's ``threshold`` (0.85 in its code).

Not supported: SDAR's mixture-of-experts models (``model_type: "sdar_moe"``, 30B-A3B) are
refused with a message.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import torch
from transformers import PretrainedConfig, PreTrainedModel, Qwen3Config, Qwen3ForCausalLM

from dlm.models.diffusion_lm import DiffusionConfig

from .base import (
    IDENTIFICATION_FIELDS,
    QWEN2_FIELDS,
    QWEN_READ_FIELDS,
    Family,
    Probe,
    RenameTable,
    UnsupportedCheckpointError,
    first_id,
    qwen_config,
    renamed_by,
    token_id,
    valid_id,
)

__all__ = ["SDAR", "SDAR_CONFIG_KEYS", "SDAR_IGNORED", "SDAR_RENAMES", "sdar_block_size"]

SDAR_MASK_ID = 151669
SDAR_BLOCK_SIZE = 4

#: SDAR config fields passed to ``Qwen3Config`` under the same name.
SDAR_CONFIG_KEYS: tuple[str, ...] = (*QWEN2_FIELDS, "head_dim", "attention_bias", "layer_types")

#: Fields read elsewhere: the rotary base and scaling (``rope_parameters``), the special ids,
#: the vocabulary (from the embedding), the block size and the mask id (the diffusion fields).
SDAR_READ_ELSEWHERE: tuple[str, ...] = (*QWEN_READ_FIELDS, "block_size", "mask_token_id")

#: Fields that change no maths of the forward: identification, storage and training kernels.
SDAR_IGNORED: tuple[str, ...] = (
    *IDENTIFICATION_FIELDS,
    "attn_implementation",
    "debug",
    "ep_size",
    "fuse_cross_entropy",
    "micro_forward",
    "skip_checkpoint",
    "use_deepep",
)

#: SDAR weight name -> ``Qwen3ForCausalLM`` weight name: the identity.
SDAR_RENAMES: RenameTable = (
    (r"(model\.embed_tokens\.weight)", r"\1"),
    (r"(model\.layers\.\d+\.self_attn\.[qkvo]_proj\.(?:weight|bias))", r"\1"),
    (r"(model\.layers\.\d+\.self_attn\.[qk]_norm\.weight)", r"\1"),
    (r"(model\.layers\.\d+\.mlp\.(?:gate|up|down)_proj\.weight)", r"\1"),
    (r"(model\.layers\.\d+\.(?:input|post_attention)_layernorm\.weight)", r"\1"),
    (r"(model\.norm\.weight)", r"\1"),
    (r"(lm_head\.weight)", r"\1"),
)


def matches(probe: Probe) -> bool:
    return (
        probe.model_type.lower() in ("sdar", "sdar_moe")
        or any(a.startswith("SDAR") for a in probe.architectures)
        or any(ref.startswith("modeling_sdar") for ref in probe.auto_map)
    )


def check(probe: Probe) -> None:
    if probe.model_type.lower() == "sdar_moe" or "SDARMoeForCausalLM" in probe.architectures:
        raise UnsupportedCheckpointError(
            f"{probe.directory} is an SDAR mixture-of-experts checkpoint (sdar_moe); dlm reads "
            "the dense SDAR models (SDAR-1.7B/4B/8B-Chat) only"
        )


def sdar_block_size(probe: Probe) -> int:
    """``config.json``'s ``block_size``, else a ``-b<N>`` directory suffix, else 4."""
    configured = first_id(probe.config.get("block_size"))
    if configured is not None and configured >= 1:
        return configured
    suffix = re.search(r"-b(\d+)$", probe.directory.resolve().name)
    return int(suffix.group(1)) if suffix else SDAR_BLOCK_SIZE


def _mask_id(probe: Probe) -> int:
    configured = first_id(probe.config.get("mask_token_id"))
    if configured is not None:
        return configured
    if probe.tokenizer_mask_id is not None:
        return probe.tokenizer_mask_id
    for text in ("<|MASK|>", "<MASK>"):  # SDAR's files spell it both ways
        found = token_id(probe.directory, text)
        if found is not None:
            return found
    return SDAR_MASK_ID


def backbone(
    probe: Probe, state: Mapping[str, torch.Tensor]
) -> tuple[type[PreTrainedModel], PretrainedConfig]:
    return Qwen3ForCausalLM, qwen_config(Qwen3Config, probe, state, SDAR_CONFIG_KEYS, _pad_id(probe))


def _pad_id(probe: Probe) -> int | None:
    return first_id(probe.config.get("pad_token_id", probe.generation.get("pad_token_id")))


def diffusion(probe: Probe, vocab: int) -> DiffusionConfig:
    # the chat models end a turn with <|im_end|>, the first of generation_config's stop ids
    eos = first_id(probe.generation.get("eos_token_id", probe.config.get("eos_token_id")))
    return DiffusionConfig(
        mask_token_id=_mask_id(probe),
        shift=False,
        attention="block_causal",
        block_size=sdar_block_size(probe),
        pad_token_id=valid_id(_pad_id(probe), vocab),
        eos_token_id=valid_id(eos, vocab),
    )


def generation(probe: Probe) -> dict[str, Any]:
    return {
        "temperature": 0.0,
        "top_p": None,
        "top_k": None,
        "policy": "confidence",
        "block_length": sdar_block_size(probe),
        "cache": "prefix",
    }


SDAR = Family(
    name="sdar",
    summary="SDAR (model_type sdar, SDARForCausalLM; Qwen3 weights, block-causal, mask 151669, no shift)",
    matches=matches,
    convert=renamed_by(SDAR_RENAMES),
    backbone=backbone,
    diffusion=diffusion,
    generation=generation,
    embed_key="model.embed_tokens.weight",
    ignore=(r".*rotary_emb\.inv_freq",),
    check=check,
)
