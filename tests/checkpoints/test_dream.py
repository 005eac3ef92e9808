"""Dream: detection, every mapped config field, and logits equal to Qwen2 with the same weights."""

from __future__ import annotations

import dataclasses

import torch
from transformers import Qwen2ForCausalLM

from dlm.checkpoints import detect_format, load_model, load_published, probe
from dlm.checkpoints.dream import DREAM
from dlm.models.diffusion_lm import shift_logits


def test_detected_as_dream(dream_checkpoint):
    directory, _ = dream_checkpoint
    assert detect_format(directory) == "dream"


def test_every_config_field_is_mapped(dream_checkpoint):
    directory, reference = dream_checkpoint
    model = load_published(directory)
    native, expected = model.backbone.config, reference.config
    assert isinstance(model.backbone, Qwen2ForCausalLM)
    for field in (
        "vocab_size",
        "hidden_size",
        "intermediate_size",
        "num_hidden_layers",
        "num_attention_heads",
        "num_key_value_heads",
        "hidden_act",
        "max_position_embeddings",
        "rms_norm_eps",
        "tie_word_embeddings",
    ):
        assert getattr(native, field) == getattr(expected, field), field
    assert native.rope_parameters["rope_theta"] == 1e6
    assert native.tie_word_embeddings is False
    assert (native.bos_token_id, native.eos_token_id, native.pad_token_id) == (151643,) * 3
    cfg = model.config
    assert (cfg.mask_token_id, cfg.shift, cfg.attention) == (151666, True, "bidirectional")
    assert (cfg.pad_token_id, cfg.eos_token_id) == (151643, 151643)
    assert model.source_format == "dream"
    assert model.generation_defaults == {
        "temperature": 0.0,
        "top_p": None,
        "top_k": None,
        "steps": 512,
        "eps": 1e-3,
        "policy": "random",
        "policy_temperature": 0.0,
    }


def test_logits_equal_qwen2_with_the_original_weights(dream_checkpoint, bidirectional_logits):
    directory, reference = dream_checkpoint
    model = load_model(directory)  # no dlm_config.json: the published loader
    ids = torch.randint(0, 151680, (2, 9), generator=torch.Generator().manual_seed(0))
    expected = shift_logits(bidirectional_logits(reference, ids))
    with torch.no_grad():
        got = model(ids)
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-5)
    changed = ids.clone()
    changed[:, -1] = (changed[:, -1] + 1) % 151680
    with torch.no_grad():  # bidirectional: the last token moves the earliest predictions
        assert (model(changed)[:, 1] - got[:, 1]).abs().amax() > 1e-4


def test_generation_config_overrides_the_class_defaults(dream_checkpoint, tmp_path, layouts):
    directory, _ = dream_checkpoint
    found = probe(directory)
    layouts.write_json(
        tmp_path / "generation_config.json",
        {"alg": "entropy", "alg_temp": 0.1, "steps": 64, "temperature": 0.2, "top_p": 0.95},
    )
    found = dataclasses.replace(found, generation=probe(tmp_path).generation)
    defaults = DREAM.generation(found)
    assert defaults["policy"] == "entropy"
    assert (defaults["policy_temperature"], defaults["steps"]) == (0.1, 64)
    assert (defaults["temperature"], defaults["top_p"]) == (0.2, 0.95)


def test_missing_fields_fall_back_to_dream_config_defaults(dream_checkpoint):
    directory, _ = dream_checkpoint
    found = probe(directory)
    bare = {k: v for k, v in found.config.items() if k not in ("mask_token_id", "pad_token_id")}
    found = dataclasses.replace(found, config=bare)
    cfg = DREAM.diffusion(found, 151680)
    assert (cfg.mask_token_id, cfg.pad_token_id) == (151666, 151643)


def test_rope_scaling_becomes_rope_parameters(dream_checkpoint):
    found = probe(dream_checkpoint[0])
    scaled = {**found.config, "rope_scaling": {"type": "linear", "factor": 2.0}}
    found = dataclasses.replace(found, config=scaled)
    _, config = DREAM.backbone(found, {"model.embed_tokens.weight": torch.zeros(64, 32)})
    assert config.rope_parameters == {"rope_type": "linear", "factor": 2.0, "rope_theta": 1e6}
    assert config.vocab_size == 64 and config.pad_token_id is None  # 151643 is not in 64 ids
