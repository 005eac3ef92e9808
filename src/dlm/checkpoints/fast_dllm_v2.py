"""Fast-dLLM v2 (``Efficient-Large-Model/Fast_dLLM_v2_7B`` / ``_1.5B``): block-diffusion Qwen2.

Recognised by ``model_type: "Fast_dLLM_Qwen"``, the ``Fast_dLLM_QwenForCausalLM`` architecture
or an ``auto_map`` pointing at ``Fast_dLLM_Qwen*`` classes. The models are Qwen2.5-Instruct
continued as block-diffusion LMs (about 1B tokens). ``modeling.py`` is Qwen2's module tree and
weight names (q/k/v with biases, no o_proj or MLP biases, ``lm_head`` tied on the 1.5B model),
so the weights map one to one onto ``Qwen2ForCausalLM``. At inference its mask is block-causal
over absolute positions (``block_q >= block_kv``, blocks of ``bd_size`` = 32), which is dlm's
``attention="block_causal"``. Fast-dLLM v2 keeps the AR model's shift: the output at i - 1
predicts token i (its loss is transformers' shifted causal-LM loss), and a block's first token
comes from the last position of the finished block before it, as in dlm's forward.

``Fast_dLLM_QwenConfig`` copies ``Qwen2Config`` and adds ``bd_size``: a field the file leaves out
takes Qwen2's default. ``conplemenrary_mask`` (sic) is a training flag no code reads; it is
ignored (:data:`FAST_DLLM_V2_IGNORED`). The mask token ``|<MASK>|`` is hard-coded in their code
as 151665 (``config.json`` has no field for it); it is read from the saved tokenizer when the
token is there.

Sampler defaults are Fast-dLLM v2's evaluation setting (``eval.py``, README): sub-blocks of 8
inside the 32-token blocks, a confidence threshold of 0.9 (each step also commits its most
confident token), greedy, and the exact cache of committed blocks; ``cache="dual"`` is their
``use_block_cache`` sub-block cache. Deliberate deviation: their sampler commits a block's
first token by greedy argmax in the pass that stores the finished block; dlm scores it with
the others of its sub-block (the same logit, at temperature 0 the same token when it is the
most confident or above the threshold). ``generation_config.json`` is Qwen's chat sampler,
which their ``generate`` ignores, so it is not taken (only its stop id is).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from transformers import PretrainedConfig, PreTrainedModel, Qwen2Config, Qwen2ForCausalLM

from dlm.models.diffusion_lm import DiffusionConfig

from .base import (
    IDENTIFICATION_FIELDS,
    QWEN2_FIELDS,
    QWEN_READ_FIELDS,
    Family,
    Probe,
    first_id,
    qwen_config,
    renamed_by,
    token_id,
    valid_id,
)
from .dream import QWEN2_RENAMES

__all__ = [
    "FAST_DLLM_V2",
    "FAST_DLLM_V2_CONFIG_KEYS",
    "FAST_DLLM_V2_IGNORED",
    "FAST_DLLM_V2_SAMPLER",
]

FAST_DLLM_V2_MASK = "|<MASK>|"
FAST_DLLM_V2_MASK_ID = 151665
FAST_DLLM_V2_BLOCK_SIZE = 32  # Fast_dLLM_QwenConfig's bd_size default

#: Fast-dLLM v2 config fields passed to ``Qwen2Config`` under the same name.
FAST_DLLM_V2_CONFIG_KEYS: tuple[str, ...] = (*QWEN2_FIELDS, "layer_types")

#: Fields read elsewhere: rotary base and scaling, special ids, vocabulary, block size.
FAST_DLLM_V2_READ_ELSEWHERE: tuple[str, ...] = (*QWEN_READ_FIELDS, "bd_size")

#: Fields that change no maths of the forward: identification, storage, an unread flag.
FAST_DLLM_V2_IGNORED: tuple[str, ...] = (*IDENTIFICATION_FIELDS, "conplemenrary_mask")

#: ``eval.py``'s setting (threshold 0.9, small_block_size 8, greedy) as ``generate`` arguments.
FAST_DLLM_V2_SAMPLER: dict[str, Any] = {
    "temperature": 0.0,
    "top_p": None,
    "top_k": None,
    "policy": "confidence",
    "threshold": 0.9,
    "block_length": 8,
    "cache": "prefix",
}


def matches(probe: Probe) -> bool:
    return (
        probe.model_type.lower() == "fast_dllm_qwen"
        or any(a.startswith("Fast_dLLM") for a in probe.architectures)
        or any(".Fast_dLLM" in ref for ref in probe.auto_map)
    )


def block_size(probe: Probe) -> int:
    configured = first_id(probe.config.get("bd_size"))
    return configured if configured is not None and configured >= 1 else FAST_DLLM_V2_BLOCK_SIZE


def backbone(
    probe: Probe, state: Mapping[str, torch.Tensor]
) -> tuple[type[PreTrainedModel], PretrainedConfig]:
    pad = first_id(probe.config.get("pad_token_id"))
    return Qwen2ForCausalLM, qwen_config(Qwen2Config, probe, state, FAST_DLLM_V2_CONFIG_KEYS, pad)


def diffusion(probe: Probe, vocab: int) -> DiffusionConfig:
    # their stop token is <|im_end|>, config.json's eos_token_id (also first in generation_config)
    eos = first_id(probe.config.get("eos_token_id", probe.generation.get("eos_token_id")))
    mask = token_id(probe.directory, FAST_DLLM_V2_MASK)
    return DiffusionConfig(
        mask_token_id=FAST_DLLM_V2_MASK_ID if mask is None else mask,
        shift=True,
        attention="block_causal",
        block_size=block_size(probe),
        pad_token_id=valid_id(first_id(probe.config.get("pad_token_id")), vocab),
        eos_token_id=valid_id(eos, vocab),
    )


def generation(probe: Probe) -> dict[str, Any]:
    sampler = dict(FAST_DLLM_V2_SAMPLER)
    if block_size(probe) % sampler["block_length"]:
        sampler["block_length"] = block_size(probe)  # sub-blocks must tile a block
    return sampler


FAST_DLLM_V2 = Family(
    name="fast_dllm_v2",
    summary=(
        "Fast-dLLM v2 (model_type Fast_dLLM_Qwen; Qwen2 weights, block-causal bd_size 32, "
        "mask 151665, shift)"
    ),
    matches=matches,
    convert=renamed_by(QWEN2_RENAMES),
    backbone=backbone,
    diffusion=diffusion,
    generation=generation,
    embed_key="model.embed_tokens.weight",
    ignore=(r".*rotary_emb\.inv_freq",),
)
