"""DiffuGPT: the wrapper layout detected and mapped back onto GPT-2, logits equal to GPT-2's."""

from __future__ import annotations

import dataclasses

import pytest
import torch
from transformers import GPT2LMHeadModel

from dlm.checkpoints import detect_format, load_published, probe
from dlm.checkpoints.diffugpt import DIFFUGPT, diffugpt_mask_id
from dlm.models.diffusion_lm import shift_logits


def test_detected_as_diffugpt(diffugpt_checkpoint):
    assert detect_format(diffugpt_checkpoint[0]) == "diffugpt"


def test_every_config_field_is_mapped(diffugpt_checkpoint):
    directory, reference = diffugpt_checkpoint
    model = load_published(directory)
    native, expected = model.backbone.config, reference.config
    assert isinstance(model.backbone, GPT2LMHeadModel)
    for field in ("n_embd", "n_layer", "n_head", "n_positions", "activation_function"):
        assert getattr(native, field) == getattr(expected, field), field
    assert native.layer_norm_epsilon == 1e-5
    assert native.vocab_size == 50258  # the embedding's rows, not config.json's 50257
    assert native.tie_word_embeddings
    head, embed = model.backbone.lm_head.weight, model.backbone.get_input_embeddings().weight
    assert head.data_ptr() == embed.data_ptr()
    cfg = model.config
    assert (cfg.mask_token_id, cfg.shift, cfg.attention) == (50257, True, "bidirectional")
    assert (cfg.eos_token_id, cfg.pad_token_id) == (50256, None)
    assert model.generation_defaults == {
        "steps": 64,
        "temperature": 0.95,
        "top_p": 0.9,
        "policy": "random",
    }


@pytest.mark.parametrize("keep", ["embed", "head", "both"])
def test_logits_equal_gpt2_with_the_original_weights(tmp_path, layouts, keep, bidirectional_logits):
    reference = layouts.write_diffugpt(tmp_path, keep=keep)
    model = load_published(tmp_path)
    ids = torch.randint(0, 50258, (2, 9), generator=torch.Generator().manual_seed(0))
    expected = shift_logits(bidirectional_logits(reference, ids))
    with torch.no_grad():
        torch.testing.assert_close(model(ids), expected, atol=1e-5, rtol=1e-5)


def test_mask_id_rules(diffugpt_checkpoint):
    found = probe(diffugpt_checkpoint[0])
    assert diffugpt_mask_id(found, 50258) == 50257  # DiffuGPT-M: [MASK] appended
    assert diffugpt_mask_id(found, 50257) == 10541  # DiffuGPT-S: an existing token
    with_tokenizer = dataclasses.replace(found, tokenizer_mask_id=123)
    assert diffugpt_mask_id(with_tokenizer, 50257) == 123
    in_config = dataclasses.replace(with_tokenizer, config={**found.config, "mask_token_id": 7})
    assert DIFFUGPT.diffusion(in_config, 50257).mask_token_id == 7
