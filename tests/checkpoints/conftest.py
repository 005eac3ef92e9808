"""Tiny random checkpoints written in each published layout, and the models they came from.

Every writer saves ``config.json`` with the source's own field names (``model_type``,
``architectures``, ``auto_map``) and safetensors with the source's own weight names, at sizes
like hidden 32 and 2 layers, but with the real vocabulary sizes where a mask id depends on them.
Norm weights and biases are perturbed away from 1 and 0 so that a swapped mapping shows up.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from safetensors.torch import save_file
from transformers import (
    GPT2Config,
    GPT2LMHeadModel,
    LlamaConfig,
    LlamaForCausalLM,
    PreTrainedModel,
    Qwen2Config,
    Qwen2ForCausalLM,
)

HIDDEN, LAYERS, HEADS, KV_HEADS, POSITIONS = 32, 2, 4, 2, 64


def write_json(path: Path, data: dict) -> None:
    path.write_text(json.dumps(data, indent=2))


def save_weights(directory: Path, tensors: dict[str, torch.Tensor], shards: int = 1) -> None:
    """Safetensors files, sharded with an index like the hub's when ``shards`` > 1."""
    directory.mkdir(parents=True, exist_ok=True)
    names = sorted(tensors)
    if shards == 1:
        save_file({k: tensors[k].contiguous() for k in names}, str(directory / "model.safetensors"))
        return
    weight_map = {}
    for i in range(shards):
        part = names[i::shards]
        filename = f"model-{i + 1:05d}-of-{shards:05d}.safetensors"
        save_file({k: tensors[k].contiguous() for k in part}, str(directory / filename))
        weight_map.update(dict.fromkeys(part, filename))
    write_json(
        directory / "model.safetensors.index.json", {"metadata": {}, "weight_map": weight_map}
    )


def perturbed(model: PreTrainedModel, seed: int) -> PreTrainedModel:
    """``model`` with every parameter moved by a little noise (norms no longer all ones)."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for param in model.parameters():
            param.add_(0.05 * torch.randn(param.shape, generator=generator))
    return model.eval()


def random_tensor(*shape: int, generator: torch.Generator, scale: float = 0.05) -> torch.Tensor:
    return scale * torch.randn(*shape, generator=generator)


# ---------------------------------------------------------------- Dream
DREAM_VOCAB = 151680


def dream_config_json(**overrides) -> dict:
    """A ``config.json`` as Dream-org publishes it (DreamConfig fields), at tiny sizes."""
    config = {
        "architectures": ["DreamModel"],
        "auto_map": {
            "AutoConfig": "configuration_dream.DreamConfig",
            "AutoModel": "modeling_dream.DreamModel",
        },
        "model_type": "Dream",
        "attention_dropout": 0.0,
        "bos_token_id": 151643,
        "eos_token_id": 151643,
        "hidden_act": "silu",
        "hidden_size": HIDDEN,
        "initializer_range": 0.02,
        "intermediate_size": 64,
        "mask_token_id": 151666,
        "max_position_embeddings": POSITIONS,
        "max_window_layers": 28,
        "num_attention_heads": HEADS,
        "num_hidden_layers": LAYERS,
        "num_key_value_heads": KV_HEADS,
        "pad_token_id": 151643,
        "rms_norm_eps": 1e-06,
        "rope_scaling": None,
        "rope_theta": 1000000.0,
        "sliding_window": None,
        "tie_word_embeddings": False,
        "torch_dtype": "bfloat16",
        "use_cache": False,
        "use_sliding_window": False,
        "vocab_size": DREAM_VOCAB,
    }
    config.update(overrides)
    return config


def write_dream(
    directory: Path, seed: int = 0, vocab: int = DREAM_VOCAB, **overrides
) -> Qwen2ForCausalLM:
    """A Dream checkpoint; returns the Qwen2 model whose weights it holds."""
    spec = dream_config_json(vocab_size=vocab, **overrides)
    native = Qwen2Config(
        vocab_size=vocab,
        hidden_size=HIDDEN,
        intermediate_size=64,
        num_hidden_layers=LAYERS,
        num_attention_heads=HEADS,
        num_key_value_heads=KV_HEADS,
        max_position_embeddings=POSITIONS,
        rope_theta=1e6,
        rms_norm_eps=1e-6,
        tie_word_embeddings=False,
    )
    torch.manual_seed(seed)
    reference = perturbed(Qwen2ForCausalLM._from_config(native, attn_implementation="sdpa"), seed)
    save_weights(directory, dict(reference.state_dict()))
    write_json(directory / "config.json", spec)
    write_json(
        directory / "generation_config.json",
        {"bos_token_id": 151643, "eos_token_id": 151643, "pad_token_id": 151643},
    )
    return reference


# ---------------------------------------------------------------- LLaDA
LLADA_VOCAB = 126464


def llada_config_json(**overrides) -> dict:
    """A ``config.json`` as GSAI-ML publishes LLaDA-8B (every field), at tiny sizes."""
    config = {
        "activation_type": "silu",
        "alibi": False,
        "alibi_bias_max": 8.0,
        "architectures": ["LLaDAModelLM"],
        "attention_dropout": 0.0,
        "attention_layer_norm": False,
        "attention_layer_norm_with_affine": True,
        "auto_map": {
            "AutoConfig": "configuration_llada.LLaDAConfig",
            "AutoModelForCausalLM": "modeling_llada.LLaDAModelLM",
            "AutoModel": "modeling_llada.LLaDAModelLM",
        },
        "bias_for_layer_norm": False,
        "block_group_size": 1,
        "block_type": "llama",
        "d_model": HIDDEN,
        "embedding_dropout": 0.0,
        "embedding_size": LLADA_VOCAB,
        "eos_token_id": 126081,
        "flash_attention": False,
        "include_bias": False,
        "include_qkv_bias": False,
        "init_cutoff_factor": None,
        "init_device": "meta",
        "init_fn": "mitchell",
        "init_std": 0.02,
        "input_emb_norm": False,
        "layer_norm_type": "rms",
        "layer_norm_with_affine": True,
        "mask_token_id": 126336,
        "max_sequence_length": POSITIONS,
        "mlp_hidden_size": 96,
        "mlp_ratio": 4,
        "model_type": "llada",
        "multi_query_attention": None,
        "n_heads": HEADS,
        "n_kv_heads": KV_HEADS,
        "n_layers": LAYERS,
        "pad_token_id": 126081,
        "precision": "amp_bf16",
        "residual_dropout": 0.0,
        "rms_norm_eps": 1e-05,
        "rope": True,
        "rope_full_precision": True,
        "rope_theta": 500000.0,
        "scale_logits": False,
        "transformers_version": "4.46.3",
        "use_cache": False,
        "vocab_size": LLADA_VOCAB,
        "weight_tying": False,
    }
    config.update(overrides)
    return config


def llada_weights(spec: dict, seed: int = 0) -> dict[str, torch.Tensor]:
    """Random weights under LLaDA's own names for the config ``spec``."""
    g = torch.Generator().manual_seed(seed)
    d, layers = spec["d_model"], spec["n_layers"]
    kv = spec["n_kv_heads"] * (d // spec["n_heads"])
    hidden = spec["mlp_hidden_size"]
    rows = spec["embedding_size"] or spec["vocab_size"]
    out = {
        "model.transformer.wte.weight": random_tensor(rows, d, generator=g, scale=0.2),
        "model.transformer.ln_f.weight": 1 + random_tensor(d, generator=g),
    }
    if not spec["weight_tying"]:
        out["model.transformer.ff_out.weight"] = random_tensor(rows, d, generator=g, scale=0.2)
    for i in range(layers):
        p = f"model.transformer.blocks.{i}."
        out[p + "attn_norm.weight"] = 1 + random_tensor(d, generator=g)
        out[p + "ff_norm.weight"] = 1 + random_tensor(d, generator=g)
        out[p + "attn_out.weight"] = random_tensor(d, d, generator=g, scale=0.2)
        if spec["block_type"] == "sequential":
            out[p + "att_proj.weight"] = random_tensor(d + 2 * kv, d, generator=g, scale=0.2)
            out[p + "ff_proj.weight"] = random_tensor(hidden, d, generator=g, scale=0.2)
            out[p + "ff_out.weight"] = random_tensor(d, hidden // 2, generator=g, scale=0.2)
        else:
            out[p + "q_proj.weight"] = random_tensor(d, d, generator=g, scale=0.2)
            out[p + "k_proj.weight"] = random_tensor(kv, d, generator=g, scale=0.2)
            out[p + "v_proj.weight"] = random_tensor(kv, d, generator=g, scale=0.2)
            out[p + "ff_proj.weight"] = random_tensor(hidden, d, generator=g, scale=0.2)
            out[p + "up_proj.weight"] = random_tensor(hidden, d, generator=g, scale=0.2)
            out[p + "ff_out.weight"] = random_tensor(d, hidden, generator=g, scale=0.2)
    return out


def write_llada(
    directory: Path, seed: int = 0, dtype: torch.dtype = torch.float32, **overrides
) -> tuple[dict, dict[str, torch.Tensor]]:
    """A LLaDA checkpoint in two shards; returns its config and weights."""
    spec = llada_config_json(**overrides)
    weights = {k: v.to(dtype) for k, v in llada_weights(spec, seed).items()}
    save_weights(directory, weights, shards=2)
    write_json(directory / "config.json", spec)
    return spec, weights


# ---------------------------------------------------------------- DiffuGPT
def write_diffugpt(directory: Path, vocab: int = 50258, keep: str = "embed") -> GPT2LMHeadModel:
    """A DiffuGPT wrapper checkpoint (``embed_tokens`` / ``denoise_model.*`` / ``lm_head``).

    The head is tied to the embedding, so the hub file stores one of the two names: ``keep``
    says which (``"embed"``, ``"head"`` or ``"both"``).
    """
    native = GPT2Config(
        vocab_size=vocab, n_embd=HIDDEN, n_layer=LAYERS, n_head=HEADS, n_positions=POSITIONS
    )
    torch.manual_seed(1)
    reference = perturbed(GPT2LMHeadModel._from_config(native, attn_implementation="sdpa"), 1)
    tensors = {}
    for name, value in reference.state_dict().items():
        if name == "transformer.wte.weight":
            if keep in ("embed", "both"):
                tensors["embed_tokens.weight"] = value.clone()
            if keep in ("head", "both"):
                tensors["lm_head.weight"] = value.clone()
        elif name.startswith("transformer."):
            tensors["denoise_model." + name.removeprefix("transformer.")] = value
    save_weights(directory, tensors)
    write_json(
        directory / "config.json",
        {
            "_name_or_path": "gpt2-medium",
            "activation_function": "gelu_new",
            "architectures": ["GPT2LMHeadModel"],
            "attn_pdrop": 0.1,
            "bos_token_id": 50256,
            "embd_pdrop": 0.1,
            "eos_token_id": 50256,
            "initializer_range": 0.02,
            "layer_norm_epsilon": 1e-05,
            "model_type": "gpt2",
            "n_ctx": POSITIONS,
            "n_embd": HIDDEN,
            "n_head": HEADS,
            "n_layer": LAYERS,
            "n_positions": POSITIONS,
            "resid_pdrop": 0.1,
            "task_specific_params": {"text-generation": {"do_sample": True, "max_length": 50}},
            "vocab_size": 50257,
        },
    )
    return reference


# ---------------------------------------------------------------- DiffuLLaMA
LLAMA2_VOCAB = 32000


def llama_config_json(**overrides) -> dict:
    config = {
        "architectures": ["LlamaForCausalLM"],
        "bos_token_id": 1,
        "eos_token_id": 2,
        "hidden_act": "silu",
        "hidden_size": HIDDEN,
        "initializer_range": 0.02,
        "intermediate_size": 64,
        "max_position_embeddings": POSITIONS,
        "model_type": "llama",
        "num_attention_heads": HEADS,
        "num_hidden_layers": LAYERS,
        "num_key_value_heads": HEADS,
        "pretraining_tp": 1,
        "rms_norm_eps": 1e-05,
        "rope_scaling": None,
        "rope_theta": 10000.0,
        "tie_word_embeddings": False,
        "torch_dtype": "bfloat16",
        "use_cache": True,
        "vocab_size": LLAMA2_VOCAB,
    }
    config.update(overrides)
    return config


def write_diffullama(directory: Path, layout: str = "plain", **overrides) -> LlamaForCausalLM:
    """A DiffuLLaMA checkpoint: a plain Llama directory, or the wrapper's state dict."""
    spec = llama_config_json(**overrides)
    native = LlamaConfig(
        vocab_size=LLAMA2_VOCAB,
        hidden_size=HIDDEN,
        intermediate_size=64,
        num_hidden_layers=LAYERS,
        num_attention_heads=HEADS,
        num_key_value_heads=HEADS,
        max_position_embeddings=POSITIONS,
        rms_norm_eps=1e-5,
        tie_word_embeddings=False,
    )
    torch.manual_seed(2)
    reference = perturbed(LlamaForCausalLM._from_config(native, attn_implementation="sdpa"), 2)
    tensors = dict(reference.state_dict())
    if layout == "wrapper":
        tensors = {
            (
                "embed_tokens.weight"
                if k == "model.embed_tokens.weight"
                else k.replace("model.", "denoise_model.", 1)
            ): v
            for k, v in tensors.items()
        }
    save_weights(directory, tensors)
    write_json(directory / "config.json", spec)
    return reference


@pytest.fixture
def bidirectional_logits() -> Callable[[PreTrainedModel, torch.Tensor], torch.Tensor]:
    """The native model's logits with an explicit all-ones 4-D mask (no causal masking)."""

    def run(model: PreTrainedModel, ids: torch.Tensor) -> torch.Tensor:
        full = torch.ones(ids.shape[0], 1, ids.shape[1], ids.shape[1], dtype=torch.bool)
        with torch.no_grad():
            return model(ids, attention_mask=full).logits

    return run


@pytest.fixture(scope="session")
def layouts() -> SimpleNamespace:
    """The writers above, for tests that need a variant of a layout."""
    return SimpleNamespace(
        write_json=write_json,
        save_weights=save_weights,
        dream_config_json=dream_config_json,
        write_dream=write_dream,
        llada_config_json=llada_config_json,
        write_llada=write_llada,
        write_diffugpt=write_diffugpt,
        llama_config_json=llama_config_json,
        write_diffullama=write_diffullama,
    )


@pytest.fixture(scope="session")
def dream_checkpoint(tmp_path_factory) -> tuple[Path, Qwen2ForCausalLM]:
    directory = tmp_path_factory.mktemp("dream")
    return directory, write_dream(directory)


@pytest.fixture(scope="session")
def llada_checkpoint(tmp_path_factory) -> tuple[Path, dict, dict[str, torch.Tensor]]:
    directory = tmp_path_factory.mktemp("llada")
    return (directory, *write_llada(directory))


@pytest.fixture(scope="session")
def diffugpt_checkpoint(tmp_path_factory) -> tuple[Path, GPT2LMHeadModel]:
    directory = tmp_path_factory.mktemp("diffugpt")
    return directory, write_diffugpt(directory)


@pytest.fixture(scope="session")
def diffullama_checkpoint(tmp_path_factory) -> tuple[Path, LlamaForCausalLM]:
    directory = tmp_path_factory.mktemp("diffullama")
    return directory, write_diffullama(directory, mask_token_id=811)
