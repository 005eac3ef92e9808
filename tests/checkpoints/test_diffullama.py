"""DiffuLLaMA: plain-Llama and wrapper layouts, detection hints, logits equal to LLaMA's."""

from __future__ import annotations

import pytest
import torch
from transformers import LlamaForCausalLM

from dlm.checkpoints import detect_format, load_published
from dlm.models import NotADlmCheckpointError
from dlm.models.diffusion_lm import shift_logits

LLAMA_FIELDS = (
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
)


def test_every_config_field_is_mapped(diffullama_checkpoint):
    directory, reference = diffullama_checkpoint
    assert detect_format(directory) == "diffullama"
    model = load_published(directory)
    native = model.backbone.config
    assert isinstance(model.backbone, LlamaForCausalLM)
    for field in LLAMA_FIELDS:
        assert getattr(native, field) == getattr(reference.config, field), field
    assert native.rope_parameters["rope_theta"] == 10000.0
    assert (native.bos_token_id, native.eos_token_id) == (1, 2)
    cfg = model.config
    assert (cfg.mask_token_id, cfg.shift, cfg.attention) == (811, True, "bidirectional")
    assert (cfg.eos_token_id, cfg.pad_token_id) == (2, None)
    assert model.generation_defaults["steps"] == 64


@pytest.mark.parametrize("layout", ["plain", "wrapper"])
def test_logits_equal_llama_with_the_original_weights(
    tmp_path, layouts, layout, bidirectional_logits
):
    reference = layouts.write_diffullama(tmp_path, layout, mask_token_id=811)
    model = load_published(tmp_path)
    ids = torch.randint(0, 32000, (2, 9), generator=torch.Generator().manual_seed(0))
    expected = shift_logits(bidirectional_logits(reference, ids))
    with torch.no_grad():
        torch.testing.assert_close(model(ids), expected, atol=1e-5, rtol=1e-5)


def test_detected_from_the_tokenizer_mask_token(tmp_path, layouts):
    layouts.write_json(tmp_path / "config.json", layouts.llama_config_json())
    layouts.save_weights(tmp_path, {"model.embed_tokens.weight": torch.zeros(4, 4)})
    with pytest.raises(NotADlmCheckpointError, match="matches no published format"):
        detect_format(tmp_path)  # a plain Llama is not a diffusion model
    layouts.write_json(tmp_path / "special_tokens_map.json", {"mask_token": "▁ded"})
    layouts.write_json(
        tmp_path / "tokenizer.json", {"added_tokens": [], "model": {"vocab": {"▁ded": 811}}}
    )
    assert detect_format(tmp_path) == "diffullama"


def test_detected_from_the_model_name(tmp_path, layouts):
    config = layouts.llama_config_json(_name_or_path="diffusionfamily/diffullama")
    layouts.write_json(tmp_path / "config.json", config)
    layouts.save_weights(tmp_path, {"model.embed_tokens.weight": torch.zeros(4, 4)})
    assert detect_format(tmp_path) == "diffullama"
