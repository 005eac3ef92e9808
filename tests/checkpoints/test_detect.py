"""Format detection, the unknown-directory error, strict weight mapping, and from_pretrained's pointer to load_model."""

from __future__ import annotations

import pytest
import torch
from safetensors.torch import load_file

from dlm.checkpoints import (
    FORMATS,
    UnsupportedCheckpointError,
    detect_format,
    load_model,
    load_published,
    probe,
)
from dlm.models import DiffusionLM, NotADlmCheckpointError
from dlm.models.diffusion_lm import shift_logits
from helpers import tiny_model


def test_a_saved_dlm_checkpoint_is_dlm_and_loads_unchanged(tmp_path):
    model = tiny_model("llama")
    model.save_pretrained(tmp_path)
    assert detect_format(tmp_path) == "dlm"
    loaded = load_published(tmp_path)
    ids = torch.randint(5, 40, (2, 7), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        torch.testing.assert_close(loaded(ids), model(ids))


def test_from_pretrained_opens_dlm_directories_only_and_points_at_load_model(tmp_path, layouts):
    layouts.write_json(tmp_path / "config.json", layouts.dream_config_json())
    assert detect_format(tmp_path) == "dream"
    with pytest.raises(NotADlmCheckpointError, match=r"dlm.load_model\(path\).*dlm convert"):
        DiffusionLM.from_pretrained(tmp_path)


def test_every_format_has_a_name():
    assert FORMATS == ("dlm", "dream", "llada", "diffugpt", "diffullama", "sdar", "fast_dllm_v2")


def test_unknown_directory_error_keeps_the_dlm_message(tmp_path):
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(NotADlmCheckpointError, match=r"no dlm_config.json \(found: notes.txt\)"):
        load_model(tmp_path)
    with pytest.raises(NotADlmCheckpointError, match="not a directory"):
        load_model(tmp_path / "missing")


def test_unknown_directory_error_lists_what_was_found_and_what_is_supported(tmp_path, layouts):
    layouts.write_json(
        tmp_path / "config.json",
        {"model_type": "bert", "architectures": ["BertForMaskedLM"], "vocab_size": 30522},
    )
    layouts.save_weights(
        tmp_path,
        {
            f"bert.encoder.layer.{i}.attention.self.query.weight": torch.zeros(2, 2)
            for i in range(8)
        },
    )
    with pytest.raises(NotADlmCheckpointError) as info:
        detect_format(tmp_path)
    message = str(info.value)
    assert "'model_type': 'bert'" in message and "BertForMaskedLM" in message
    assert "bert.encoder.layer.0.attention.self.query.weight" in message
    assert "(+2 more)" in message
    for name in ("Dream", "LLaDA", "DiffuGPT", "DiffuLLaMA", "SDAR", "Fast-dLLM v2", "dlm_config.json"):
        assert name in message
    with pytest.raises(NotADlmCheckpointError, match="matches no published format"):
        load_model(tmp_path)


def test_detection_reads_fields_without_loading_weights(tmp_path, layouts):
    layouts.write_json(tmp_path / "config.json", layouts.dream_config_json())
    assert detect_format(tmp_path) == "dream"  # no weights at all: config fields decide
    layouts.write_json(tmp_path / "config.json", {"auto_map": {"AutoModel": "modeling_llada.X"}})
    assert detect_format(tmp_path) == "llada"
    layouts.write_json(tmp_path / "config.json", {})
    layouts.write_json(
        tmp_path / "model.safetensors.index.json",
        {"weight_map": {"model.transformer.blocks.0.q_proj.weight": "absent.safetensors"}},
    )
    assert probe(tmp_path).weight_names == ("model.transformer.blocks.0.q_proj.weight",)
    assert detect_format(tmp_path) == "llada"  # the weight names alone


def test_a_weight_no_rule_maps_is_an_error_not_dropped(tmp_path, layouts):
    layouts.write_dream(tmp_path, vocab=64, mask_token_id=60, pad_token_id=0)
    tensors = load_file(str(tmp_path / "model.safetensors"))
    tensors["model.layers.0.self_attn.q_norm.weight"] = torch.ones(8)
    layouts.save_weights(tmp_path, tensors)
    with pytest.raises(UnsupportedCheckpointError, match=r"no rule maps: .*q_norm"):
        load_published(tmp_path)


def test_a_missing_weight_is_an_error_not_a_random_init(tmp_path, layouts):
    layouts.write_dream(tmp_path, vocab=64, mask_token_id=60, pad_token_id=0)
    tensors = load_file(str(tmp_path / "model.safetensors"))
    del tensors["lm_head.weight"]
    layouts.save_weights(tmp_path, tensors)
    with pytest.raises(UnsupportedCheckpointError, match="missing keys: lm_head.weight"):
        load_published(tmp_path)


def test_pytorch_bin_weights_load_like_safetensors(tmp_path, layouts, bidirectional_logits):
    reference = layouts.write_diffugpt(tmp_path)
    tensors = load_file(str(tmp_path / "model.safetensors"))
    (tmp_path / "model.safetensors").unlink()
    torch.save(tensors, tmp_path / "pytorch_model.bin")
    assert detect_format(tmp_path) == "diffugpt"
    ids = torch.randint(0, 50258, (1, 6), generator=torch.Generator().manual_seed(0))
    model = load_published(tmp_path)
    expected = shift_logits(bidirectional_logits(reference, ids))
    with torch.no_grad():
        torch.testing.assert_close(model(ids), expected, atol=1e-5, rtol=1e-5)


def test_an_untied_head_never_stands_in_for_a_missing_embedding(tmp_path, layouts):
    layouts.write_dream(tmp_path, vocab=64, mask_token_id=60, pad_token_id=0)
    tensors = load_file(str(tmp_path / "model.safetensors"))
    del tensors["model.embed_tokens.weight"]
    layouts.save_weights(tmp_path, tensors)
    with pytest.raises(UnsupportedCheckpointError, match="no token embedding"):
        load_published(tmp_path)


def test_an_empty_config_is_reported_as_present_and_no_flag_is_suggested(tmp_path):
    (tmp_path / "config.json").write_text("{}")
    with pytest.raises(NotADlmCheckpointError) as info:
        detect_format(tmp_path)
    message = str(info.value)
    assert "config.json: present, but without model_type or architectures" in message
    assert "absent" not in message and "--model" not in message
