"""LLaDA: detection, mapped config fields, and logits equal to an independent LLaDA forward.

``llada_forward`` below follows the public ``modeling_llada.py`` (LLaDALlamaBlock and
LLaDASequentialBlock) on LLaDA's own weight names: RMSNorm in float32, rotary embeddings with
``cat(freqs, freqs)`` and the half-split ``rotate_half``, KV heads repeated per query group,
softmax attention written out with no mask at all, SwiGLU MLP, ``ln_f`` and the ``ff_out``
head (or the tied ``wte``).
"""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from transformers import LlamaForCausalLM

from dlm.checkpoints import UnsupportedCheckpointError, detect_format, load_published

VOCAB = 126464


def _rms(x: torch.Tensor, weight: torch.Tensor, eps: float) -> torch.Tensor:
    xf = x.float()
    return weight * (xf * torch.rsqrt(xf.pow(2).mean(-1, keepdim=True) + eps)).to(x.dtype)


def _rotate_half(t: torch.Tensor) -> torch.Tensor:
    first, second = t.chunk(2, dim=-1)
    return torch.cat((-second, first), dim=-1)


def llada_forward(spec: dict, w: dict[str, torch.Tensor], ids: torch.Tensor) -> torch.Tensor:
    """LLaDA's logits for ``ids``, computed from its config and weights by hand."""
    w = {k: v.float() for k, v in w.items()}
    d, nh, nkv, eps = spec["d_model"], spec["n_heads"], spec["n_kv_heads"], spec["rms_norm_eps"]
    hd, (b, t) = d // nh, ids.shape
    inv_freq = 1.0 / (spec["rope_theta"] ** (torch.arange(0, hd, 2).float() / hd))
    freqs = torch.outer(torch.arange(t).float(), inv_freq)
    sin, cos = torch.cat((freqs, freqs), -1).sin(), torch.cat((freqs, freqs), -1).cos()
    x = w["model.transformer.wte.weight"][ids]
    for i in range(spec["n_layers"]):
        p = f"model.transformer.blocks.{i}."
        h = _rms(x, w[p + "attn_norm.weight"], eps)
        if spec["block_type"] == "sequential":
            q, k, v = (h @ w[p + "att_proj.weight"].T).split([d, nkv * hd, nkv * hd], -1)
        else:
            q, k, v = (h @ w[p + name + ".weight"].T for name in ("q_proj", "k_proj", "v_proj"))
        q = q.view(b, t, nh, hd).transpose(1, 2)
        k = k.view(b, t, nkv, hd).transpose(1, 2)
        v = v.view(b, t, nkv, hd).transpose(1, 2)
        q, k = q * cos + _rotate_half(q) * sin, k * cos + _rotate_half(k) * sin
        k, v = k.repeat_interleave(nh // nkv, dim=1), v.repeat_interleave(nh // nkv, dim=1)
        scores = (q @ k.transpose(-1, -2)) / math.sqrt(hd)
        att = (scores.softmax(-1) @ v).transpose(1, 2).reshape(b, t, d)
        x = x + att @ w[p + "attn_out.weight"].T
        h = _rms(x, w[p + "ff_norm.weight"], eps)
        if spec["block_type"] == "sequential":
            up, gate = (h @ w[p + "ff_proj.weight"].T).chunk(2, -1)
            mlp = F.silu(gate) * up
        else:
            mlp = F.silu(h @ w[p + "ff_proj.weight"].T) * (h @ w[p + "up_proj.weight"].T)
        x = x + mlp @ w[p + "ff_out.weight"].T
    x = _rms(x, w["model.transformer.ln_f.weight"], eps)
    head = (
        "model.transformer.wte.weight"
        if spec["weight_tying"]
        else "model.transformer.ff_out.weight"
    )
    return x @ w[head].T


def _ids(seed: int = 0) -> torch.Tensor:
    return torch.randint(0, VOCAB, (2, 11), generator=torch.Generator().manual_seed(seed))


def test_detected_as_llada(llada_checkpoint):
    assert detect_format(llada_checkpoint[0]) == "llada"


def test_every_config_field_is_mapped(llada_checkpoint):
    directory, spec, _ = llada_checkpoint
    model = load_published(directory)
    native = model.backbone.config
    assert isinstance(model.backbone, LlamaForCausalLM)
    assert native.vocab_size == spec["embedding_size"]
    assert native.hidden_size == spec["d_model"]
    assert native.num_hidden_layers == spec["n_layers"]
    assert native.num_attention_heads == spec["n_heads"]
    assert native.num_key_value_heads == spec["n_kv_heads"]
    assert native.head_dim == spec["d_model"] // spec["n_heads"]
    assert native.intermediate_size == spec["mlp_hidden_size"]
    assert native.hidden_act == "silu"
    assert native.max_position_embeddings == spec["max_sequence_length"]
    assert native.rms_norm_eps == spec["rms_norm_eps"]
    assert native.rope_parameters["rope_theta"] == spec["rope_theta"] == 500000.0
    assert native.tie_word_embeddings is False
    assert not native.attention_bias and not native.mlp_bias
    assert (native.eos_token_id, native.pad_token_id) == (126081, 126081)
    cfg = model.config
    assert (cfg.mask_token_id, cfg.shift, cfg.attention) == (126336, False, "bidirectional")
    assert (cfg.pad_token_id, cfg.eos_token_id) == (126081, 126081)
    assert model.generation_defaults["policy"] == "confidence"
    assert (
        model.backbone.lm_head.weight.data_ptr()
        != model.backbone.get_input_embeddings().weight.data_ptr()
    )


def test_logits_equal_the_llada_forward(llada_checkpoint):
    directory, spec, weights = llada_checkpoint
    model = load_published(directory)
    ids = _ids()
    with torch.no_grad():
        got = model(ids)
    torch.testing.assert_close(got, llada_forward(spec, weights, ids), atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize(
    "overrides",
    [
        {"block_type": "sequential", "activation_type": "swiglu", "n_kv_heads": 1},
        {"weight_tying": True, "n_kv_heads": 4, "rope_theta": 10000.0},
    ],
    ids=["sequential-fused-mqa", "tied-mha"],
)
def test_variants_equal_the_llada_forward(tmp_path, layouts, overrides):
    spec, weights = layouts.write_llada(tmp_path, seed=3, **overrides)
    model = load_published(tmp_path)
    ids = _ids(1)
    with torch.no_grad():
        got = model(ids)
    torch.testing.assert_close(got, llada_forward(spec, weights, ids), atol=1e-5, rtol=1e-5)


def test_dtype_follows_the_checkpoint_unless_given(tmp_path, layouts):
    layouts.write_llada(tmp_path, dtype=torch.bfloat16)
    assert load_published(tmp_path).backbone.dtype == torch.bfloat16
    assert load_published(tmp_path, dtype=torch.float32).backbone.dtype == torch.float32


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"include_qkv_bias": True}, "include_qkv_bias=True"),
        ({"attention_layer_norm": True}, "attention_layer_norm=True"),
        ({"layer_norm_type": "default"}, "layer_norm_type='default'"),
        ({"block_type": "sequential"}, "block_type='sequential' with activation_type='silu'"),
    ],
)
def test_features_llama_lacks_are_refused_by_name(tmp_path, layouts, overrides, message):
    layouts.write_json(tmp_path / "config.json", layouts.llada_config_json(**overrides))
    layouts.save_weights(tmp_path, {"model.transformer.wte.weight": torch.zeros(4, 4)})
    with pytest.raises(UnsupportedCheckpointError, match=message):
        load_published(tmp_path)
