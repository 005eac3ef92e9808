import pytest
import torch
from transformers import AutoModelForCausalLM

from dlm.models import (
    DiffusionConfig,
    DiffusionLM,
    NotADlmCheckpointError,
    anneal_ratio,
    build_attention,
)
from dlm.models.diffusion_lm import shift_logits
from helpers import MASK_ID, tiny_model


def _tokens(batch=2, length=10, seed=0):
    return torch.randint(5, 40, (batch, length), generator=torch.Generator().manual_seed(seed))


def test_bidirectional_every_position_sees_the_future(arch):
    model = tiny_model(arch, shift=False)
    x = _tokens()
    y = x.clone()
    y[:, -1] = (y[:, -1] + 1 - 5) % 35 + 5
    diff = (model(x) - model(y)).abs().amax(-1)
    assert (diff[:, :-1] > 1e-6).all()


def test_causal_mode_never_sees_the_future(arch):
    model = tiny_model(arch, shift=False, attention="causal")
    x = _tokens()
    y = x.clone()
    y[:, 6] = (y[:, 6] + 1 - 5) % 35 + 5
    a, b = model(x), model(y)
    assert torch.equal(a[:, :6], b[:, :6])
    assert (a[:, 6:] - b[:, 6:]).abs().amax() > 1e-6


@pytest.mark.parametrize("mode", ["bidirectional", "causal"])
def test_padding_left_right_none_give_identical_real_logits(arch, mode):
    model = tiny_model(arch, attention=mode)
    x = _tokens(batch=2, length=9)
    plain = model(x)
    pad = torch.zeros(2, 4, dtype=torch.long)
    ones, zeros = torch.ones(2, 9, dtype=torch.long), torch.zeros(2, 4, dtype=torch.long)
    left = model(torch.cat([pad, x], 1), torch.cat([zeros, ones], 1))[:, 4:]
    right = model(torch.cat([x, pad], 1), torch.cat([ones, zeros], 1))[:, :9]
    torch.testing.assert_close(left, plain, atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(right, plain, atol=1e-5, rtol=1e-4)


def test_ragged_batch_rows_match_unpadded_rows(arch):
    model = tiny_model(arch)
    a, b = _tokens(1, 7, seed=1), _tokens(1, 4, seed=2)
    ids = torch.cat([a, torch.cat([torch.zeros(1, 3, dtype=torch.long), b], 1)])
    mask = torch.tensor([[1] * 7, [0] * 3 + [1] * 4])
    out = model(ids, mask)
    torch.testing.assert_close(out[0], model(a)[0], atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(out[1, 3:], model(b)[0], atol=1e-5, rtol=1e-4)


def test_shift_aligns_logits_with_the_token_they_predict(arch):
    shifted = tiny_model(arch, shift=True, seed=3)
    plain = tiny_model(arch, shift=False, seed=3)
    x = _tokens()
    s, p = shifted(x), plain(x)
    torch.testing.assert_close(s[:, 1:], p[:, :-1])
    torch.testing.assert_close(s[:, 0], p[:, 0])


def test_shift_keeps_first_real_token_after_left_padding():
    logits = torch.arange(5.0).view(1, 5, 1)
    out = shift_logits(logits, torch.tensor([[0, 0, 1, 1, 1]]))
    assert out.flatten().tolist() == [0.0, 0.0, 2.0, 2.0, 3.0]


def test_annealing_endpoints_equal_causal_and_bidirectional(arch):
    annealed = tiny_model(arch, attention="annealed", seed=5)
    x = _tokens()
    causal_logits = tiny_model(arch, attention="causal", seed=5)(x)
    bidir_logits = tiny_model(arch, attention="bidirectional", seed=5)(x)
    torch.testing.assert_close(annealed(x, anneal_ratio=0.0), causal_logits, atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(annealed(x, anneal_ratio=1.0), bidir_logits, atol=1e-5, rtol=1e-4)
    mid = annealed(x, anneal_ratio=0.5, generator=torch.Generator().manual_seed(0))
    assert (mid - causal_logits).abs().amax() > 1e-6 and (mid - bidir_logits).abs().amax() > 1e-6


def test_anneal_ratio_schedule():
    assert anneal_ratio(0, 10) == pytest.approx(0.1)
    assert anneal_ratio(4, 10) == pytest.approx(0.5)
    assert anneal_ratio(50, 10) == 1.0
    assert anneal_ratio(0, 0) == 1.0


def test_annealed_mask_contains_causal_and_rate_matches():
    att = build_attention(
        "annealed", None, 200, ratio=0.3, generator=torch.Generator().manual_seed(0)
    )
    allowed = att.attention_mask[0, 0]
    lower = torch.ones(200, 200, dtype=torch.bool).tril()
    assert allowed[lower].all()
    upper = allowed & ~lower
    frac = upper.sum().item() / (200 * 199 / 2)
    assert frac == pytest.approx(0.3, abs=0.02)


def test_no_padding_takes_the_maskless_fast_path():
    att = build_attention("bidirectional", torch.ones(2, 5, dtype=torch.long), 5)
    assert att.attention_mask is None and att.position_ids is None and not att.causal
    padded = build_attention("bidirectional", torch.tensor([[0, 1, 1]]), 3)
    assert padded.position_ids.tolist() == [[0, 0, 1]]
    assert padded.attention_mask[0, 0].tolist() == [
        [True, False, False],
        [False, True, True],
        [False, True, True],
    ]


def test_save_and_load_round_trip(tmp_path, arch, char_tokenizer):
    model = tiny_model(arch, attention="annealed", shift=True)
    model.config.anneal_steps = 77
    model.save_pretrained(tmp_path / "ckpt", char_tokenizer)
    loaded = DiffusionLM.from_pretrained(tmp_path / "ckpt")
    assert loaded.config == model.config
    x = _tokens()
    torch.testing.assert_close(loaded(x), model(x))
    # the backbone alone is an ordinary transformers checkpoint
    AutoModelForCausalLM.from_pretrained(tmp_path / "ckpt")


def test_new_mask_token_resizes_embeddings(char_tokenizer):
    from dlm.models import backbone_config, build_backbone

    char_tokenizer_vocab = len(char_tokenizer)
    backbone = build_backbone(
        backbone_config(
            "llama", vocab_size=char_tokenizer_vocab, hidden_size=16, num_layers=1, num_heads=2
        )
    )
    model = DiffusionLM.from_causal_lm(backbone, char_tokenizer, mask_token="<|mdm_mask|>")
    assert model.config.mask_token_id == char_tokenizer_vocab
    assert model.vocab_size == char_tokenizer_vocab + 1
    existing = DiffusionLM.from_causal_lm(backbone, char_tokenizer, mask_token="[MASK]")
    assert existing.config.mask_token_id == MASK_ID


def test_mask_id_outside_vocabulary_is_a_clear_error():
    from dlm.models import backbone_config, build_backbone

    backbone = build_backbone(
        backbone_config("gpt2", vocab_size=20, hidden_size=16, num_layers=1, num_heads=2)
    )
    with pytest.raises(
        ValueError, match=r"mask_token_id=25 lies outside the backbone's vocabulary of 20"
    ):
        DiffusionLM(backbone, DiffusionConfig(mask_token_id=25))


def test_not_a_checkpoint_is_a_clear_error(tmp_path):
    (tmp_path / "notes.txt").write_text("hi")
    with pytest.raises(NotADlmCheckpointError, match=r"no dlm_config.json.*dlm.load_model\(path\)"):
        DiffusionLM.from_pretrained(tmp_path)
    with pytest.raises(NotADlmCheckpointError, match="not a directory"):
        DiffusionLM.from_pretrained(tmp_path / "missing")


def test_sequence_longer_than_positions_is_a_clear_error():
    model = tiny_model(max_positions=8)
    with pytest.raises(ValueError, match="exceeds the model's 8 positions"):
        model(_tokens(1, 9))
