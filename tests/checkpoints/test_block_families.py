"""SDAR and Fast-dLLM v2: tiny checkpoints in their published layouts (config fields and weight
names as their hub folders hold them), every config field accounted for, and logits equal to the
native Qwen3 / Qwen2 forward under a block-causal mask built here by hand."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
import torch
from transformers import Qwen2Config, Qwen2ForCausalLM, Qwen3Config, Qwen3ForCausalLM

from dlm.checkpoints import UnsupportedCheckpointError, convert, detect_format, load_model, probe
from dlm.checkpoints.fast_dllm_v2 import (
    FAST_DLLM_V2,
    FAST_DLLM_V2_CONFIG_KEYS,
    FAST_DLLM_V2_IGNORED,
    FAST_DLLM_V2_READ_ELSEWHERE,
)
from dlm.checkpoints.sdar import SDAR, SDAR_CONFIG_KEYS, SDAR_IGNORED, SDAR_READ_ELSEWHERE
from dlm.models import DiffusionLM
from dlm.models.diffusion_lm import shift_logits
from dlm.sampling import generate

from .conftest import (
    HEADS,
    HIDDEN,
    KV_HEADS,
    LAYERS,
    POSITIONS,
    perturbed,
    save_weights,
    write_json,
)

QWEN_VOCAB = 151936


def sdar_config_json(**overrides) -> dict:
    """``config.json`` as JetLM publishes SDAR-4B-Chat (every field), at tiny sizes."""
    config = {
        "architectures": ["SDARForCausalLM"],
        "attention_bias": False,
        "attention_dropout": 0.0,
        "attn_implementation": "flex_attention",
        "auto_map": {
            "AutoConfig": "configuration_sdar.SDARConfig",
            "AutoModel": "modeling_sdar.SDARModel",
            "AutoModelForCausalLM": "modeling_sdar.SDARForCausalLM",
        },
        "bos_token_id": 151643,
        "debug": False,
        "eos_token_id": 151643,
        "ep_size": 1,
        "fuse_cross_entropy": True,
        "head_dim": 16,
        "hidden_act": "silu",
        "hidden_size": HIDDEN,
        "initializer_range": 0.02,
        "intermediate_size": 64,
        "max_position_embeddings": POSITIONS,
        "max_window_layers": LAYERS,
        "micro_forward": False,
        "model_type": "sdar",
        "num_attention_heads": HEADS,
        "num_hidden_layers": LAYERS,
        "num_key_value_heads": KV_HEADS,
        "rms_norm_eps": 1e-06,
        "rope_scaling": None,
        "rope_theta": 1000000,
        "skip_checkpoint": False,
        "sliding_window": None,
        "tie_word_embeddings": False,
        "torch_dtype": "bfloat16",
        "transformers_version": "4.52.4",
        "use_cache": False,
        "use_deepep": False,
        "use_sliding_window": False,
        "vocab_size": QWEN_VOCAB,
    }
    config.update(overrides)
    return config


def fast_dllm_v2_config_json(**overrides) -> dict:
    """``config.json`` as Efficient-Large-Model publishes Fast_dLLM_v2_7B (every field), tiny."""
    config = {
        "architectures": ["Fast_dLLM_QwenForCausalLM"],
        "attention_dropout": 0.0,
        "auto_map": {
            "AutoConfig": "configuration.Fast_dLLM_QwenConfig",
            "AutoModel": "modeling.Fast_dLLM_QwenModel",
            "AutoModelForCausalLM": "modeling.Fast_dLLM_QwenForCausalLM",
        },
        "bd_size": 4,
        "bos_token_id": 151643,
        "conplemenrary_mask": True,
        "eos_token_id": 151645,
        "hidden_act": "silu",
        "hidden_size": HIDDEN,
        "initializer_range": 0.02,
        "intermediate_size": 64,
        "layer_types": ["full_attention"] * LAYERS,
        "max_position_embeddings": POSITIONS,
        "max_window_layers": LAYERS,
        "model_type": "Fast_dLLM_Qwen",
        "num_attention_heads": HEADS,
        "num_hidden_layers": LAYERS,
        "num_key_value_heads": KV_HEADS,
        "pad_token_id": 151645,
        "rms_norm_eps": 1e-06,
        "rope_scaling": None,
        "rope_theta": 1000000.0,
        "sliding_window": None,
        "tie_word_embeddings": False,
        "torch_dtype": "bfloat16",
        "transformers_version": "4.53.1",
        "use_cache": True,
        "use_sliding_window": False,
        "vocab_size": 152064,
    }
    config.update(overrides)
    return config


def write_sdar(directory: Path, seed: int = 0, **overrides) -> Qwen3ForCausalLM:
    spec = sdar_config_json(**overrides)
    native = Qwen3Config(
        vocab_size=spec["vocab_size"], hidden_size=HIDDEN, intermediate_size=64, head_dim=16,
        num_hidden_layers=LAYERS, num_attention_heads=HEADS, num_key_value_heads=KV_HEADS,
        max_position_embeddings=POSITIONS, rope_parameters={"rope_type": "default", "rope_theta": 1e6},
        rms_norm_eps=1e-6, tie_word_embeddings=False,
    )
    torch.manual_seed(seed)
    reference = perturbed(Qwen3ForCausalLM._from_config(native, attn_implementation="sdpa"), seed)
    save_weights(directory, dict(reference.state_dict()), shards=2)
    write_json(directory / "config.json", spec)
    write_json(
        directory / "generation_config.json",
        {"bos_token_id": 151643, "do_sample": True, "eos_token_id": [151645, 151643],
         "pad_token_id": 151643, "temperature": 0.6, "top_k": 20, "top_p": 0.95},
    )
    return reference


def write_fast_dllm_v2(directory: Path, seed: int = 0, tied: bool = False, **overrides) -> Qwen2ForCausalLM:
    spec = fast_dllm_v2_config_json(tie_word_embeddings=tied, **overrides)
    native = Qwen2Config(
        vocab_size=spec["vocab_size"], hidden_size=HIDDEN, intermediate_size=64,
        num_hidden_layers=LAYERS, num_attention_heads=HEADS, num_key_value_heads=KV_HEADS,
        max_position_embeddings=POSITIONS, rope_parameters={"rope_type": "default", "rope_theta": 1e6},
        rms_norm_eps=1e-6, tie_word_embeddings=tied,
    )
    torch.manual_seed(seed)
    reference = perturbed(Qwen2ForCausalLM._from_config(native, attn_implementation="sdpa"), seed)
    state = dict(reference.state_dict())
    if tied:
        state.pop("lm_head.weight")  # a tied checkpoint (the 1.5B model) stores the embedding only
    save_weights(directory, state)
    write_json(directory / "config.json", spec)
    write_json(
        directory / "generation_config.json",
        {"bos_token_id": 151643, "do_sample": True, "eos_token_id": [151645, 151643],
         "pad_token_id": 151643, "repetition_penalty": 1.05, "temperature": 0.7, "top_k": 20,
         "top_p": 0.8},
    )
    write_json(directory / "added_tokens.json", {"<|im_end|>": 151645, "|<MASK>|": 151665})
    return reference


@pytest.fixture(scope="module")
def sdar_checkpoint(tmp_path_factory):
    directory = tmp_path_factory.mktemp("sdar") / "SDAR-4B-Chat"
    return directory, write_sdar(directory)


@pytest.fixture(scope="module")
def fast_checkpoint(tmp_path_factory):
    directory = tmp_path_factory.mktemp("fast") / "Fast_dLLM_v2_7B"
    return directory, write_fast_dllm_v2(directory)


def block_causal_logits(model, ids: torch.Tensor, block: int) -> torch.Tensor:
    """The native model's logits under ``block_q >= block_k`` (Fast-dLLM v2's eval_mask, SDAR's
    block-diagonal-plus-causal mask), built independently of dlm."""
    blocks = torch.arange(ids.shape[1]) // block
    allowed = (blocks[:, None] >= blocks[None, :]).expand(ids.shape[0], 1, -1, -1)
    with torch.no_grad():
        return model(ids, attention_mask=allowed).logits


def _ids(seed: int = 0, length: int = 11) -> torch.Tensor:
    return torch.randint(0, 151000, (2, length), generator=torch.Generator().manual_seed(seed))


def _accounted(config: dict, *groups: tuple[str, ...]) -> set[str]:
    return set(config) - {key for group in groups for key in group}


# ---------------------------------------------------------------- SDAR
def test_sdar_is_detected_and_every_config_field_is_accounted_for(sdar_checkpoint):
    directory, reference = sdar_checkpoint
    assert detect_format(directory) == "sdar"
    spec = json.loads((directory / "config.json").read_text())
    assert not _accounted(spec, SDAR_CONFIG_KEYS, SDAR_READ_ELSEWHERE, SDAR_IGNORED)
    model = load_model(directory)
    native = model.backbone.config
    assert isinstance(model.backbone, Qwen3ForCausalLM)
    for key in SDAR_CONFIG_KEYS:
        if key in spec and key != "layer_types":
            assert getattr(native, key) == spec[key], key
    assert native.rope_parameters["rope_theta"] == 1e6 and native.vocab_size == QWEN_VOCAB
    assert (native.bos_token_id, native.eos_token_id, native.pad_token_id) == (151643,) * 3
    cfg = model.config
    assert (cfg.attention, cfg.block_size, cfg.shift) == ("block_causal", 4, False)
    assert (cfg.mask_token_id, cfg.eos_token_id, cfg.pad_token_id) == (151669, 151645, 151643)
    assert model.source_format == "sdar"
    assert model.generation_defaults == {
        "temperature": 0.0, "top_p": None, "top_k": None, "policy": "confidence",
        "block_length": 4, "cache": "prefix",
    }  # SDAR's sampler, not generation_config's Qwen chat temperature


def test_sdar_logits_equal_qwen3_under_the_block_causal_mask_without_shift(sdar_checkpoint):
    directory, reference = sdar_checkpoint
    model = load_model(directory)
    ids = _ids()
    expected = block_causal_logits(reference, ids, 4)
    with torch.no_grad():
        got = model(ids)
        torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-5)
        later = ids.clone()
        later[:, 9] += 1  # block 2: blocks 0 and 1 do not see it, block 2 does
        moved = model(later)
    torch.testing.assert_close(moved[:, :8], got[:, :8], atol=0, rtol=0)
    assert (moved[:, 8] - got[:, 8]).abs().amax() > 1e-4


def test_sdar_block_size_comes_from_the_config_or_the_directory_suffix(tmp_path, sdar_checkpoint):
    found = probe(sdar_checkpoint[0])
    assert SDAR.diffusion(found, QWEN_VOCAB).block_size == 4  # SDAR's continued-pretraining block
    training_copy = dataclasses.replace(found, config={**found.config, "block_size": 16})
    assert SDAR.diffusion(training_copy, QWEN_VOCAB).block_size == 16
    variant = dataclasses.replace(found, directory=tmp_path / "SDAR-8B-Chat-b32")
    assert SDAR.diffusion(variant, QWEN_VOCAB).block_size == 32
    assert SDAR.generation(variant)["block_length"] == 32


def test_sdar_mask_id_comes_from_the_config_then_the_tokenizer(tmp_path, sdar_checkpoint):
    found = probe(sdar_checkpoint[0])
    assert SDAR.diffusion(dataclasses.replace(found, config={**found.config, "mask_token_id": 7}), 100).mask_token_id == 7
    write_json(
        tmp_path / "tokenizer_config.json",
        {"added_tokens_decoder": {"151670": {"content": "<|MASK|>", "special": False}},
         "mask_token": "<|MASK|>"},
    )
    assert SDAR.diffusion(dataclasses.replace(probe(tmp_path), config=found.config), QWEN_VOCAB).mask_token_id == 151670


def test_sdar_moe_is_refused_with_a_message(tmp_path):
    write_json(tmp_path / "config.json", sdar_config_json(model_type="sdar_moe", architectures=["SDARMoeForCausalLM"]))
    save_weights(tmp_path, {"model.embed_tokens.weight": torch.zeros(4, 4)})
    with pytest.raises(UnsupportedCheckpointError, match="mixture-of-experts"):
        load_model(tmp_path)


def test_sdar_samples_with_its_exact_cache(sdar_checkpoint):
    model = load_model(sdar_checkpoint[0])
    prompt = _ids(3, 6)
    exact = generate(model, prompt, max_new_tokens=10)  # the family defaults: blocks of 4, prefix cache
    full = generate(model, prompt, max_new_tokens=10, cache="none")
    assert torch.equal(exact.sequences, full.sequences)
    assert exact.nfe == full.nfe == 10  # one token per step, SDAR's published setting


# ---------------------------------------------------------------- Fast-dLLM v2
def test_fast_dllm_v2_is_detected_and_every_config_field_is_accounted_for(fast_checkpoint):
    directory, reference = fast_checkpoint
    assert detect_format(directory) == "fast_dllm_v2"
    spec = json.loads((directory / "config.json").read_text())
    assert not _accounted(spec, FAST_DLLM_V2_CONFIG_KEYS, FAST_DLLM_V2_READ_ELSEWHERE, FAST_DLLM_V2_IGNORED)
    model = load_model(directory)
    native = model.backbone.config
    assert isinstance(model.backbone, Qwen2ForCausalLM)
    for key in FAST_DLLM_V2_CONFIG_KEYS:
        if key in spec:
            assert getattr(native, key) == spec[key], key
    assert native.rope_parameters["rope_theta"] == 1e6 and native.vocab_size == 152064
    assert (native.bos_token_id, native.eos_token_id, native.pad_token_id) == (151643, 151645, 151645)
    cfg = model.config
    assert (cfg.attention, cfg.block_size, cfg.shift) == ("block_causal", 4, True)
    assert (cfg.mask_token_id, cfg.eos_token_id, cfg.pad_token_id) == (151665, 151645, 151645)
    # eval.py's setting; the sub-block (8) does not tile this tiny model's blocks of 4
    assert model.generation_defaults == {
        "temperature": 0.0, "top_p": None, "top_k": None, "policy": "confidence",
        "threshold": 0.9, "block_length": 4, "cache": "prefix",
    }
    published = dataclasses.replace(probe(directory), config={**spec, "bd_size": 32})
    assert FAST_DLLM_V2.generation(published)["block_length"] == 8
    assert FAST_DLLM_V2.diffusion(published, 152064).block_size == 32


def test_fast_dllm_v2_logits_equal_qwen2_under_the_block_causal_mask_shifted(fast_checkpoint):
    directory, reference = fast_checkpoint
    model = load_model(directory)
    ids = _ids(1)
    expected = shift_logits(block_causal_logits(reference, ids, 4))
    with torch.no_grad():
        got = model(ids)
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-5)


def test_a_tied_fast_dllm_v2_checkpoint_loads_its_head_from_the_embedding(tmp_path):
    reference = write_fast_dllm_v2(tmp_path / "Fast_dLLM_v2_1.5B", seed=1, tied=True)
    model = load_model(tmp_path / "Fast_dLLM_v2_1.5B")
    assert model.backbone.config.tie_word_embeddings
    ids = _ids(2)
    torch.testing.assert_close(model(ids), shift_logits(block_causal_logits(reference, ids, 4)), atol=1e-5, rtol=1e-5)


def test_fast_dllm_v2_samples_and_converts(tmp_path, fast_checkpoint):
    directory, _ = fast_checkpoint
    model = load_model(directory)
    prompt = _ids(4, 5)
    exact = generate(model, prompt, max_new_tokens=11)
    full = generate(model, prompt, max_new_tokens=11, cache="none")
    dual = generate(model, prompt, max_new_tokens=11, cache="dual", block_length=2)
    assert torch.equal(exact.sequences, full.sequences)
    assert torch.equal(dual.sequences[:, :5], prompt)  # the sub-block cache keeps the prompt
    assert not (dual.generated == model.config.mask_token_id).any() and dual.nfe == 11
    result = convert(directory, tmp_path / "converted")
    assert (result.format, result.attention) == ("fast_dllm_v2", "block_causal")
    converted = DiffusionLM.from_pretrained(tmp_path / "converted")
    assert (converted.config.block_size, converted.config.shift) == (4, True)
    assert converted.generation_defaults == model.generation_defaults
    with torch.no_grad():
        torch.testing.assert_close(converted(prompt), model(prompt), atol=0, rtol=0)
