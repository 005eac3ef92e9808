"""Dream 7B and Dream-Coder 7B (``Dream-org/*``): Qwen2 weights under Dream's remote-code classes.

Recognised by ``model_type: "Dream"``, the ``DreamModel`` architecture or an ``auto_map``
pointing at ``modeling_dream``. ``DreamModel`` is Qwen2 with the causal mask removed
(``is_causal=False`` in every SDPA call): the same module tree and weight names
(``model.layers.N.self_attn.{q,k,v,o}_proj``, q/k/v with biases, ``mlp.{gate,up,down}_proj``,
``input_layernorm``, ``post_attention_layernorm``, ``model.norm``, ``lm_head``), so the weights
map one to one onto ``Qwen2ForCausalLM``. Dream shifts (logits at i - 1 predict token i).

Defaults follow ``DreamConfig`` (mask 151666, pad 151643, no tied embeddings) and
``DreamGenerationConfig`` (temperature 0, 512 steps, eps 1e-3, ``alg="origin"``), each
overridden by the checkpoint's own ``config.json`` / ``generation_config.json``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from transformers import PretrainedConfig, PreTrainedModel, Qwen2Config, Qwen2ForCausalLM

from dlm.models.diffusion_lm import DiffusionConfig

from .base import (
    QWEN2_FIELDS,
    Family,
    Probe,
    RenameTable,
    first_id,
    renamed_by,
    rope_parameters,
    sampler_defaults,
    valid_id,
)

__all__ = ["DREAM", "DREAM_CONFIG_KEYS", "DREAM_RENAMES", "QWEN2_RENAMES"]

#: ``DreamConfig``'s constructor defaults (used when ``config.json`` omits a field).
DREAM_DEFAULTS: dict[str, Any] = {
    "hidden_size": 4096,
    "intermediate_size": 22016,
    "num_hidden_layers": 32,
    "num_attention_heads": 32,
    "num_key_value_heads": 32,
    "hidden_act": "silu",
    "max_position_embeddings": 32768,
    "initializer_range": 0.02,
    "rms_norm_eps": 1e-6,
    "tie_word_embeddings": False,
    "rope_theta": 10000.0,
    "rope_scaling": None,
    "use_sliding_window": False,
    "sliding_window": 4096,
    "max_window_layers": 28,
    "attention_dropout": 0.0,
    "mask_token_id": 151666,
    "pad_token_id": 151643,
}

#: Dream config field -> ``Qwen2Config`` field (the names are Qwen2's own); ``rope_theta`` and
#: ``rope_scaling`` go into ``rope_parameters``.
DREAM_CONFIG_KEYS: tuple[tuple[str, str], ...] = tuple((key, key) for key in QWEN2_FIELDS)

#: ``Qwen2ForCausalLM``'s own weight names, kept as they are (Dream's and Fast-dLLM v2's layout).
QWEN2_RENAMES: RenameTable = (
    (r"(model\.embed_tokens\.weight)", r"\1"),
    (r"(model\.layers\.\d+\.self_attn\.[qkv]_proj\.(?:weight|bias))", r"\1"),
    (r"(model\.layers\.\d+\.self_attn\.o_proj\.weight)", r"\1"),
    (r"(model\.layers\.\d+\.mlp\.(?:gate|up|down)_proj\.weight)", r"\1"),
    (r"(model\.layers\.\d+\.(?:input|post_attention)_layernorm\.weight)", r"\1"),
    (r"(model\.norm\.weight)", r"\1"),
    (r"(lm_head\.weight)", r"\1"),
)

#: Dream weight name -> ``Qwen2ForCausalLM`` weight name: the identity.
DREAM_RENAMES: RenameTable = QWEN2_RENAMES

#: ``DreamGenerationConfig``'s defaults as ``dlm.sampling.generate`` arguments.
DREAM_SAMPLER = {
    "temperature": 0.0,
    "top_p": None,
    "top_k": None,
    "steps": 512,
    "eps": 1e-3,
    "policy": "random",
    "policy_temperature": 0.0,
}


def _setting(probe: Probe, key: str) -> Any:
    return probe.config.get(key, DREAM_DEFAULTS.get(key))


def matches(probe: Probe) -> bool:
    return (
        probe.model_type.lower() == "dream"
        or "DreamModel" in probe.architectures
        or any(ref.startswith("modeling_dream.") for ref in probe.auto_map)
    )


def backbone(
    probe: Probe, state: Mapping[str, torch.Tensor]
) -> tuple[type[PreTrainedModel], PretrainedConfig]:
    kwargs = {native: _setting(probe, source) for source, native in DREAM_CONFIG_KEYS}
    vocab = state["model.embed_tokens.weight"].shape[0]
    config = Qwen2Config(
        vocab_size=vocab,
        rope_parameters=rope_parameters(
            _setting(probe, "rope_theta"), _setting(probe, "rope_scaling")
        ),
        bos_token_id=valid_id(first_id(probe.config.get("bos_token_id")), vocab),
        eos_token_id=valid_id(first_id(probe.config.get("eos_token_id")), vocab),
        pad_token_id=valid_id(first_id(_setting(probe, "pad_token_id")), vocab),
        use_cache=False,
        **kwargs,
    )
    return Qwen2ForCausalLM, config


def diffusion(probe: Probe, vocab: int) -> DiffusionConfig:
    eos = first_id(probe.generation.get("eos_token_id", probe.config.get("eos_token_id")))
    return DiffusionConfig(
        mask_token_id=int(_setting(probe, "mask_token_id")),
        shift=True,
        attention="bidirectional",
        pad_token_id=valid_id(first_id(_setting(probe, "pad_token_id")), vocab),
        eos_token_id=valid_id(eos, vocab),
    )


def generation(probe: Probe) -> dict[str, Any]:
    return sampler_defaults(DREAM_SAMPLER, probe.generation)


DREAM = Family(
    name="dream",
    summary="Dream / Dream-Coder 7B (model_type Dream, DreamModel; Qwen2 weights, mask 151666, shift)",
    matches=matches,
    convert=renamed_by(DREAM_RENAMES),
    backbone=backbone,
    diffusion=diffusion,
    generation=generation,
    embed_key="model.embed_tokens.weight",
    ignore=(r".*rotary_emb\.inv_freq",),
)
