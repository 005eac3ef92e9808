"""Block-causal attention: the mask, the single-pass training forward (equal to each block run
alone after its clean prefix), the exact cache (bit for bit the full forward at every step),
and the two reductions (one block = full attention, block size 1 = causal)."""

from __future__ import annotations

import pytest
import torch

from dlm.errors import DlmUserError
from dlm.models import DiffusionConfig, DiffusionLM, block_size_at, build_attention
from dlm.models.attention import block_denoising_attention
from helpers import MASK_ID, tiny_model


def test_block_causal_mask_inside_and_across_blocks():
    att = build_attention("block_causal", None, 6, block_size=2)
    expected = torch.tensor(
        [
            [1, 1, 0, 0, 0, 0],
            [1, 1, 0, 0, 0, 0],
            [1, 1, 1, 1, 0, 0],
            [1, 1, 1, 1, 0, 0],
            [1, 1, 1, 1, 1, 1],
            [1, 1, 1, 1, 1, 1],
        ],
        dtype=torch.bool,
    )
    assert torch.equal(att.attention_mask[0, 0], expected)
    assert att.position_ids is None and not att.causal


def test_block_causal_blocks_follow_positions_under_left_padding():
    """Two pads shift the columns, not the blocks: the real tokens see what they see unpadded."""
    padded = build_attention("block_causal", torch.tensor([[0, 0, 1, 1, 1, 1, 1]]), 7, block_size=2)
    alone = build_attention("block_causal", None, 5, block_size=2)
    assert torch.equal(padded.attention_mask[0, 0, 2:, 2:], alone.attention_mask[0, 0])
    assert not padded.attention_mask[0, 0, 2:, :2].any()  # padded keys are hidden
    assert padded.attention_mask[0, 0, 0].tolist() == [True] + [False] * 6  # a pad sees itself
    assert padded.position_ids.tolist() == [[0, 0, 0, 1, 2, 3, 4]]


def test_block_size_one_and_one_block_take_sdpas_maskless_paths():
    assert build_attention("block_causal", None, 8, block_size=1).causal
    whole = build_attention("block_causal", None, 8, block_size=8)
    assert whole.attention_mask is None and not whole.causal
    with pytest.raises(ValueError, match="block_size"):
        build_attention("block_causal", None, 8)


def test_denoising_attention_over_noisy_and_clean_copies():
    att = block_denoising_attention(None, 4, 2)
    m = att.attention_mask[0, 0].long().tolist()
    # columns 0-3: noisy copy, 4-7: clean copy; blocks {0, 1} and {2, 3}
    assert m[0] == [1, 1, 0, 0, 0, 0, 0, 0]  # noisy block 0: itself only
    assert m[2] == [0, 0, 1, 1, 1, 1, 0, 0]  # noisy block 1: itself + clean block 0
    assert m[4] == [0, 0, 0, 0, 1, 1, 0, 0]  # clean block 0: itself
    assert m[6] == [0, 0, 0, 0, 1, 1, 1, 1]  # clean block 1: clean blocks 0 and 1, no noise
    assert att.position_ids.tolist() == [[0, 1, 2, 3, 0, 1, 2, 3]]


def test_block_size_annealing_doubles_from_one():
    sizes = [block_size_at(step, 8, 100) for step in range(0, 100, 10)]
    assert sizes[0] == 1 and sizes[-1] == 8
    assert sorted(set(sizes)) == [1, 2, 4, 8] and sizes == sorted(sizes)
    assert block_size_at(0, 8, 0) == 8 and block_size_at(5, 6, 10) in (1, 2, 4, 6)


def test_config_requires_a_block_size_only_for_block_causal():
    with pytest.raises(DlmUserError, match="needs block_size"):
        DiffusionConfig(mask_token_id=2, attention="block_causal")
    with pytest.raises(DlmUserError, match="drop block_size"):
        DiffusionConfig(mask_token_id=2, block_size=4)


def _noisy(length: int, batch: int = 3, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    clean = torch.randint(5, 40, (batch, length), generator=g)
    masked = torch.rand(batch, length, generator=g) < 0.5
    return clean, clean.masked_fill(masked, MASK_ID)


@pytest.mark.parametrize("arch", ["gpt2", "llama"])
@pytest.mark.parametrize("shift", [True, False])
@pytest.mark.parametrize("padded", [False, True])
def test_single_pass_forward_equals_each_block_after_its_clean_prefix(arch, shift, padded):
    model = tiny_model(arch, shift=shift, attention="block_causal", block_size=4).double()
    clean, noisy = _noisy(14)
    mask = None
    if padded:  # right padding, as training batches are
        mask = torch.ones_like(clean)
        mask[1, 10:] = 0
    with torch.no_grad():
        single = model(noisy, mask, clean=clean)
        for start in range(0, 14, 4):
            end = min(start + 4, 14)
            canvas = torch.cat([clean[:, :start], noisy[:, start:end]], dim=1)
            alone = model(canvas, None if mask is None else mask[:, :end])
            rows = slice(None) if mask is None else [0, 2]  # row 1 ends at column 10
            torch.testing.assert_close(single[rows, start:end], alone[rows, start:end], rtol=0, atol=1e-10)
            if mask is not None and end <= 10:
                torch.testing.assert_close(single[1, start:end], alone[1, start:end], rtol=0, atol=1e-10)


def test_single_pass_loss_equals_the_per_block_loss():
    """The objective's loss over one forward is the loss of the blocks run one by one."""
    from dlm.diffusion import masked_diffusion_loss

    model = tiny_model("llama", attention="block_causal", block_size=4).double()
    clean, noisy = _noisy(12, batch=4, seed=3)
    masked = noisy == MASK_ID
    weights = masked.double() * 2.0
    with torch.no_grad():
        single = masked_diffusion_loss(model(noisy, clean=clean), clean, masked, weights).loss
        pieces = []
        for start in range(0, 12, 4):
            canvas = torch.cat([clean[:, :start], noisy[:, start : start + 4]], dim=1)
            pieces.append(model(canvas)[:, start : start + 4])
        per_block = masked_diffusion_loss(torch.cat(pieces, 1), clean, masked, weights).loss
    torch.testing.assert_close(single, per_block, rtol=0, atol=1e-12)


@pytest.mark.parametrize("shift", [True, False])
def test_one_block_is_the_full_attention_model(shift):
    full = tiny_model("llama", shift=shift)
    block = DiffusionLM(full.backbone, DiffusionConfig(**{**vars(full.config), "attention": "block_causal", "block_size": 64}))
    clean, noisy = _noisy(10)
    with torch.no_grad():
        assert torch.equal(block(noisy), full(noisy))
        # training: one block has no clean context, so it is the full-attention loss's forward
        torch.testing.assert_close(block(noisy, clean=clean), full(noisy), rtol=0, atol=1e-5)


def test_block_size_one_is_the_causal_model():
    ar = tiny_model("gpt2", attention="causal")
    block = DiffusionLM(ar.backbone, DiffusionConfig(**{**vars(ar.config), "attention": "block_causal", "block_size": 1}))
    clean, _ = _noisy(10)
    with torch.no_grad():
        assert torch.equal(block(clean), ar(clean))


def _steps(model, cache: str, tokens: torch.Tensor, mask, prompt: int, sub: int, seed: int):
    """Every step's logits of a decode that commits random tokens, block by block."""
    g = torch.Generator().manual_seed(seed)
    tokens = tokens.clone()
    forward = model.step_forward(mask, tokens.shape[1], prompt_length=prompt, batch=tokens.shape[0], cache=cache)
    out = []
    for lo in range(prompt, tokens.shape[1], sub):
        hi = min(lo + sub, tokens.shape[1])
        forward.start_block(lo, hi)
        for _ in range(3):
            out.append(forward(tokens))
            column = int(torch.randint(lo, hi, (1,), generator=g))
            tokens[:, column] = torch.randint(5, 40, (tokens.shape[0],), generator=g)
        tokens[:, lo:hi] = torch.randint(5, 40, (tokens.shape[0], hi - lo), generator=g)
    return out


@pytest.mark.parametrize("arch", ["gpt2", "llama"])
@pytest.mark.parametrize("shift", [True, False])
@pytest.mark.parametrize("sub", [8, 4])  # sampler blocks: the model's, and sub-blocks of it
def test_exact_cache_is_bit_for_bit_the_full_forward_at_every_step(arch, shift, sub):
    """float32: the prefix cache's logits equal a full forward of the canvas (its clean prefix
    and the block; later blocks cannot be seen) at every step, as the same bits."""
    model = tiny_model(arch, shift=shift, attention="block_causal", block_size=8)
    tokens = torch.randint(5, 40, (2, 40), generator=torch.Generator().manual_seed(0))
    tokens[:, 16:] = MASK_ID
    mask = torch.ones_like(tokens)
    mask[1, :8] = 0  # a shorter prompt: left-padded by a whole block, as the canvas does
    with torch.no_grad():
        exact = _steps(model, "prefix", tokens, mask, 16, sub, seed=1)
        full = _steps(model, "none", tokens, mask, 16, sub, seed=1)
    assert len(exact) == len(full) == 3 * (24 // sub)
    for a, b in zip(exact, full, strict=True):
        assert torch.equal(a, b)


def test_dual_cache_is_exact_at_each_sub_block_start_and_close_after():
    model = tiny_model("llama", attention="block_causal", block_size=8)
    tokens = torch.randint(5, 40, (2, 32), generator=torch.Generator().manual_seed(0))
    tokens[:, 8:] = MASK_ID
    with torch.no_grad():
        dual = _steps(model, "dual", tokens, None, 8, 4, seed=2)
        full = _steps(model, "none", tokens, None, 8, 4, seed=2)
    for i, (a, b) in enumerate(zip(dual, full, strict=True)):
        if i % 3 == 0:  # a sub-block's first call refreshes the block
            assert torch.equal(a, b)
        else:  # later calls see the rest of the block as of the refresh
            torch.testing.assert_close(a, b, rtol=0, atol=0.5)
    assert any(not torch.equal(a, b) for a, b in zip(dual, full, strict=True))


def test_the_cached_steps_run_one_block():
    """After a block's first call, a step feeds the block's columns only."""
    model = tiny_model("llama", attention="block_causal", block_size=4)
    seen = []
    model.backbone.model.embed_tokens.register_forward_hook(lambda m, i, o: seen.append(i[0].shape[1]))
    tokens = torch.randint(5, 40, (1, 16))
    tokens[:, 8:] = MASK_ID
    forward = model.step_forward(None, 16, prompt_length=8, batch=1, cache="prefix")
    with torch.no_grad():
        for lo in (8, 12):
            forward.start_block(lo, lo + 4)
            forward(tokens)
            forward(tokens)
            tokens[:, lo : lo + 4] = 7
    assert seen == [12, 4, 8, 4]  # prompt + block 1; block 1; block 1 (now clean) + block 2; block 2
