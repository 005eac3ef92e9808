"""Small Hugging Face backbones built from a handful of sizes (GPT-2, LLaMA, Qwen2).

Training from scratch and the tests need tiny random models of the architectures the field
uses; this module maps one set of size knobs onto each architecture's own config class.
"""

from __future__ import annotations

from transformers import (
    AutoModelForCausalLM,
    GPT2Config,
    LlamaConfig,
    PretrainedConfig,
    PreTrainedModel,
    Qwen2Config,
)

__all__ = ["ARCHITECTURES", "backbone_config", "build_backbone", "max_positions"]

ARCHITECTURES = ("gpt2", "llama", "qwen2")


def backbone_config(
    arch: str,
    *,
    vocab_size: int,
    hidden_size: int = 128,
    num_layers: int = 4,
    num_heads: int = 4,
    intermediate_size: int | None = None,
    max_positions: int = 256,
    dropout: float = 0.0,
    pad_token_id: int | None = None,
    eos_token_id: int | None = None,
) -> PretrainedConfig:
    """A transformers config of architecture ``arch`` with the given sizes."""
    if hidden_size % num_heads:
        raise ValueError(f"hidden_size {hidden_size} must be divisible by num_heads {num_heads}")
    intermediate = intermediate_size or 4 * hidden_size
    if arch == "gpt2":
        return GPT2Config(
            vocab_size=vocab_size,
            n_embd=hidden_size,
            n_layer=num_layers,
            n_head=num_heads,
            n_inner=intermediate,
            n_positions=max_positions,
            resid_pdrop=dropout,
            embd_pdrop=dropout,
            attn_pdrop=dropout,
            pad_token_id=pad_token_id,
            eos_token_id=eos_token_id,
            bos_token_id=eos_token_id,
        )
    common = dict(
        vocab_size=vocab_size,
        hidden_size=hidden_size,
        num_hidden_layers=num_layers,
        num_attention_heads=num_heads,
        num_key_value_heads=num_heads,
        intermediate_size=intermediate,
        max_position_embeddings=max_positions,
        attention_dropout=dropout,
        pad_token_id=pad_token_id,
        eos_token_id=eos_token_id,
        bos_token_id=eos_token_id,
        tie_word_embeddings=True,
    )
    if arch == "llama":
        return LlamaConfig(**common)
    if arch == "qwen2":
        return Qwen2Config(**common)
    raise ValueError(f"unknown architecture {arch!r}; choose one of: {', '.join(ARCHITECTURES)}")


def build_backbone(config: PretrainedConfig, seed: int | None = None) -> PreTrainedModel:
    """A randomly initialised causal LM of ``config`` (SDPA attention)."""
    import torch

    if seed is not None:
        torch.manual_seed(seed)
    return AutoModelForCausalLM.from_config(config, attn_implementation="sdpa")


def max_positions(config: PretrainedConfig) -> int | None:
    """The longest sequence the backbone's position embeddings allow, when it has a limit."""
    for name in ("n_positions", "max_position_embeddings"):
        value = getattr(config, name, None)
        if isinstance(value, int):
            return value
    return None
