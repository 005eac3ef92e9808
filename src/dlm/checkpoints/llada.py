"""LLaDA 8B (``GSAI-ML/LLaDA-8B-Base`` / ``-Instruct``, LLaDA 1.5): OLMo-style names, LLaMA maths.

Recognised by ``model_type: "llada"``, the ``LLaDAModelLM`` architecture, an ``auto_map``
pointing at ``modeling_llada``, or weights under ``model.transformer.blocks.N``. The public
modeling code (``modeling_llada.py``/``configuration_llada.py`` on the model page, vendored in
NVlabs/Fast-dLLM) builds, for ``block_type: "llama"``, exactly a LLaMA decoder layer:

    x = x + attn_out(SDPA(rope(q_proj(n)), rope(k_proj(n)), v_proj(n))),  n = attn_norm(x)
    x = x + ff_out(act(ff_proj(m)) * up_proj(m)),                          m = ff_norm(x)

with RMSNorm (``rms_norm_eps``), rotary embeddings over ``d_model // n_heads`` dimensions
with base ``rope_theta`` (the half-split ``rotate_half`` convention, as in transformers),
grouped KV heads repeated per query group, attention never causal, ``ln_f`` and an untied
``ff_out`` head (``weight_tying: false``). So ``ff_proj`` is LLaMA's gate projection and
``up_proj`` its up projection. ``block_type: "sequential"`` with ``activation_type: "swiglu"``
fuses q/k/v into ``att_proj`` and the MLP into ``ff_proj`` (first half "up", second half
"gate", ``silu(gate) * up``); those are split. LLaDA does not shift. Mask id 126336.

Config features LLaMA has no counterpart for (ALiBi, QK layer norm, biases, LayerNorm instead
of RMSNorm, logit scaling, embedding scaling, block groups) are refused with a message.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

import torch
from transformers import LlamaConfig, LlamaForCausalLM, PretrainedConfig, PreTrainedModel

from dlm.models.diffusion_lm import DiffusionConfig

from .base import (
    Family,
    Probe,
    RenameTable,
    UnsupportedCheckpointError,
    first_id,
    rename,
    rope_parameters,
    sampler_defaults,
    valid_id,
)

__all__ = ["LLADA", "LLADA_CONFIG_KEYS", "LLADA_RENAMES"]

LLADA_MASK_ID = 126336

#: ``ModelConfig`` defaults of ``configuration_llada.py`` for the fields read here.
LLADA_DEFAULTS: dict[str, Any] = {
    "d_model": 768,
    "n_heads": 12,
    "n_kv_heads": None,
    "n_layers": 12,
    "mlp_ratio": 4,
    "mlp_hidden_size": None,
    "activation_type": "swiglu",
    "block_type": "sequential",
    "block_group_size": 1,
    "alibi": False,
    "rope": False,
    "attention_layer_norm": False,
    "layer_norm_type": "default",
    "layer_norm_with_affine": True,
    "rms_norm_eps": 1e-5,
    "max_sequence_length": 1024,
    "rope_theta": 10000.0,
    "include_qkv_bias": False,
    "include_bias": False,
    "bias_for_layer_norm": None,
    "scale_logits": False,
    "input_emb_norm": False,
    "weight_tying": True,
    "multi_query_attention": None,
    "mask_token_id": LLADA_MASK_ID,
}

#: LLaDA config field -> ``LlamaConfig`` field, for the fields copied as they are (besides
#: ``rope_theta`` -> ``rope_parameters``, ``n_kv_heads`` -> ``num_key_value_heads``,
#: ``mlp_hidden_size`` -> ``intermediate_size`` and ``activation_type`` -> ``hidden_act``).
LLADA_CONFIG_KEYS: tuple[tuple[str, str], ...] = (
    ("d_model", "hidden_size"),
    ("n_layers", "num_hidden_layers"),
    ("n_heads", "num_attention_heads"),
    ("max_sequence_length", "max_position_embeddings"),
    ("rms_norm_eps", "rms_norm_eps"),
    ("weight_tying", "tie_word_embeddings"),
)

_BLOCK = r"model\.transformer\.blocks\.(\d+)\."
_LAYER = r"model.layers.\1."

#: LLaDA weight name -> ``LlamaForCausalLM`` weight name (``block_type: "llama"``).
LLADA_RENAMES: RenameTable = (
    (r"model\.transformer\.wte\.weight", "model.embed_tokens.weight"),
    (r"model\.transformer\.ln_f\.weight", "model.norm.weight"),
    (r"model\.transformer\.ff_out\.weight", "lm_head.weight"),
    (_BLOCK + r"attn_norm\.weight", _LAYER + "input_layernorm.weight"),
    (_BLOCK + r"ff_norm\.weight", _LAYER + "post_attention_layernorm.weight"),
    (_BLOCK + r"q_proj\.weight", _LAYER + "self_attn.q_proj.weight"),
    (_BLOCK + r"k_proj\.weight", _LAYER + "self_attn.k_proj.weight"),
    (_BLOCK + r"v_proj\.weight", _LAYER + "self_attn.v_proj.weight"),
    (_BLOCK + r"attn_out\.weight", _LAYER + "self_attn.o_proj.weight"),
    (_BLOCK + r"ff_proj\.weight", _LAYER + "mlp.gate_proj.weight"),
    (_BLOCK + r"up_proj\.weight", _LAYER + "mlp.up_proj.weight"),
    (_BLOCK + r"ff_out\.weight", _LAYER + "mlp.down_proj.weight"),
)

#: ``block_type: "sequential"``: fused tensors split into these native parts, in order.
LLADA_FUSED_SPLITS: dict[str, tuple[str, ...]] = {
    "att_proj": ("self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj"),
    "ff_proj": ("mlp.up_proj", "mlp.gate_proj"),
}

#: The reference sampler's defaults (``generate.py`` of ML-GSAI/LLaDA): greedy, low confidence.
LLADA_SAMPLER = {"temperature": 0.0, "policy": "confidence", "steps": 128, "max_new_tokens": 128}

_ACTIVATIONS = {"silu": "silu", "gelu": "gelu", "relu": "relu"}


def setting(probe: Probe, key: str) -> Any:
    """A LLaDA config field, falling back to ``configuration_llada.ModelConfig``'s default."""
    return probe.config.get(key, LLADA_DEFAULTS.get(key))


def kv_heads(probe: Probe) -> int:
    """``ModelConfig.effective_n_kv_heads``."""
    n_kv, mqa = setting(probe, "n_kv_heads"), setting(probe, "multi_query_attention")
    if n_kv is None:
        return 1 if mqa else int(setting(probe, "n_heads"))
    return int(n_kv)


def matches(probe: Probe) -> bool:
    return (
        probe.model_type.lower() == "llada"
        or "LLaDAModelLM" in probe.architectures
        or any(ref.startswith("modeling_llada.") for ref in probe.auto_map)
        or probe.has_weight(r"model\.transformer\.blocks\.\d+\.(q_proj|att_proj)\.weight")
    )


def _unsupported(probe: Probe) -> list[str]:
    problems = []
    for key, wanted in (
        ("alibi", False),
        ("rope", True),
        ("attention_layer_norm", False),
        ("include_bias", False),
        ("include_qkv_bias", False),
        ("scale_logits", False),
        ("input_emb_norm", False),
        ("layer_norm_with_affine", True),
        ("block_group_size", 1),
        ("layer_norm_type", "rms"),
    ):
        if (setting(probe, key) or False) != wanted:
            problems.append(f"{key}={setting(probe, key)!r} (needs {wanted!r})")
    if setting(probe, "bias_for_layer_norm"):
        problems.append("bias_for_layer_norm=True (needs False)")
    block, act = setting(probe, "block_type"), setting(probe, "activation_type")
    if not (block == "llama" and act in _ACTIVATIONS) and (block, act) != ("sequential", "swiglu"):
        problems.append(
            f"block_type={block!r} with activation_type={act!r} (needs 'llama' with silu, gelu "
            "or relu, or 'sequential' with swiglu)"
        )
    return problems


def check_supported(probe: Probe) -> None:
    """Refuse a LLaDA config whose features a LLaMA decoder cannot express."""
    problems = _unsupported(probe)
    if problems:
        raise UnsupportedCheckpointError(
            f"{probe.directory} is a LLaDA checkpoint this library cannot map onto LLaMA: "
            + "; ".join(problems)
        )


def intermediate_size(probe: Probe) -> int:
    """LLaMA's MLP width: ``mlp_hidden_size`` (or ``mlp_ratio * d_model``), halved if fused."""
    hidden = setting(probe, "mlp_hidden_size") or setting(probe, "mlp_ratio") * setting(
        probe, "d_model"
    )
    return int(hidden) // 2 if setting(probe, "block_type") == "sequential" else int(hidden)


def _split_sizes(probe: Probe, part: str) -> list[int]:
    head_dim = int(setting(probe, "d_model")) // int(setting(probe, "n_heads"))
    if part == "att_proj":
        kv = kv_heads(probe) * head_dim
        return [int(setting(probe, "d_model")), kv, kv]
    half = intermediate_size(probe)
    return [half, half]


_FUSED = re.compile(_BLOCK + r"(att_proj|ff_proj)\.weight")


def convert(probe: Probe, name: str, tensor: torch.Tensor) -> Iterable[tuple[str, torch.Tensor]]:
    fused = _FUSED.fullmatch(name)
    if fused and setting(probe, "block_type") == "sequential":
        layer, part = fused.groups()
        pieces = tensor.split(_split_sizes(probe, part), dim=0)
        return [
            (f"model.layers.{layer}.{target}.weight", piece.contiguous())
            for target, piece in zip(LLADA_FUSED_SPLITS[part], pieces, strict=True)
        ]
    native = rename(name, LLADA_RENAMES)
    return None if native is None else [(native, tensor)]


def backbone(
    probe: Probe, state: Mapping[str, torch.Tensor]
) -> tuple[type[PreTrainedModel], PretrainedConfig]:
    kwargs = {native: setting(probe, source) for source, native in LLADA_CONFIG_KEYS}
    vocab = state["model.embed_tokens.weight"].shape[0]
    config = LlamaConfig(
        vocab_size=vocab,
        intermediate_size=intermediate_size(probe),
        rope_parameters=rope_parameters(setting(probe, "rope_theta")),
        num_key_value_heads=kv_heads(probe),
        head_dim=int(setting(probe, "d_model")) // int(setting(probe, "n_heads")),
        hidden_act=_ACTIVATIONS.get(setting(probe, "activation_type"), "silu"),
        attention_bias=False,
        mlp_bias=False,
        attention_dropout=0.0,
        bos_token_id=None,
        eos_token_id=valid_id(first_id(probe.config.get("eos_token_id")), vocab),
        pad_token_id=valid_id(first_id(probe.config.get("pad_token_id")), vocab),
        use_cache=False,
        **kwargs,
    )
    return LlamaForCausalLM, config


def diffusion(probe: Probe, vocab: int) -> DiffusionConfig:
    return DiffusionConfig(
        mask_token_id=int(setting(probe, "mask_token_id")),
        shift=False,
        attention="bidirectional",
        pad_token_id=valid_id(first_id(probe.config.get("pad_token_id")), vocab),
        eos_token_id=valid_id(first_id(probe.config.get("eos_token_id")), vocab),
    )


def generation(probe: Probe) -> dict[str, Any]:
    return sampler_defaults(LLADA_SAMPLER, probe.generation)


LLADA = Family(
    name="llada",
    summary=(
        "LLaDA 8B (model_type llada, LLaDAModelLM; model.transformer.blocks.N.q_proj/ff_proj/"
        "up_proj..., mask 126336, no shift)"
    ),
    matches=matches,
    convert=convert,
    backbone=backbone,
    diffusion=diffusion,
    generation=generation,
    embed_key="model.embed_tokens.weight",
    check=check_supported,
)
