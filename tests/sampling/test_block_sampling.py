"""Sampling a block-causal model: blocks left to right on a block-aligned canvas, the exact
cache (same tokens as no cache), ragged batches equal to each row alone, the reductions to the
full-attention sampler and to AR greedy decoding, and the refusals."""

from __future__ import annotations

import pytest
import torch

from dlm.errors import DlmUserError, SettingsError
from dlm.models import DiffusionConfig, DiffusionLM
from dlm.sampling import generate, stream
from helpers import EOS_ID, MASK_ID, PAD_ID, tiny_model

PROMPTS = [[5, 6, 7, 8, 9], [12, 13, 14, 15, 16, 17, 18, 19, 20], [9, 8], [30, 31, 32, 33]]


def _batch(prompts):
    width = max(len(p) for p in prompts)
    ids = torch.full((len(prompts), width), PAD_ID)
    mask = torch.zeros_like(ids)
    for r, p in enumerate(prompts):
        ids[r, width - len(p) :] = torch.tensor(p)
        mask[r, width - len(p) :] = 1
    return ids, mask


def _block_model(arch="llama", shift=True, block_size=4, dtype=torch.float64):
    return tiny_model(arch, shift=shift, attention="block_causal", block_size=block_size).to(dtype)


SETTINGS = [
    dict(steps=12),
    dict(steps=12, block_length=2),
    dict(steps=24, policy="margin"),
    dict(steps=12, threshold=0.2),
    dict(steps=12, policy="entropy", block_length=2, cache="dual"),
]


@pytest.mark.parametrize("cache", ["none", "prefix", "dual"])
@pytest.mark.parametrize("options", SETTINGS)
@pytest.mark.parametrize("arch, shift", [("llama", True), ("gpt2", False)])
def test_ragged_batch_equals_each_row_alone(cache, options, arch, shift):
    model = _block_model(arch, shift)
    options = {"cache": cache, **options}
    ids, mask = _batch(PROMPTS)
    batch = generate(model, ids, mask, max_new_tokens=12, **options)
    assert batch.prompt_length == ids.shape[1] and batch.sequences.shape == (4, ids.shape[1] + 12)
    assert torch.equal(batch.sequences[:, : ids.shape[1]], ids)  # the usual layout comes back
    for r, prompt in enumerate(PROMPTS):
        alone = generate(model, torch.tensor([prompt]), max_new_tokens=12, **options)
        assert torch.equal(batch.generated[r], alone.generated[0]), (r, batch.generated[r], alone.generated[0])
    assert not (batch.generated == MASK_ID).any()


@pytest.mark.parametrize("options", SETTINGS[:4])
@pytest.mark.parametrize("shift", [True, False])
def test_exact_cache_gives_the_tokens_of_no_cache_with_fewer_columns(options, shift):
    model = _block_model("llama", shift, block_size=4, dtype=torch.float32)
    ids, mask = _batch(PROMPTS)
    fed = []
    hook = model.backbone.model.embed_tokens.register_forward_hook(lambda m, i, o: fed.append(i[0].numel()))
    full = generate(model, ids, mask, max_new_tokens=12, cache="none", **options)
    full_columns, fed[:] = sum(fed), []
    exact = generate(model, ids, mask, max_new_tokens=12, cache="prefix", **options)
    hook.remove()
    assert torch.equal(exact.sequences, full.sequences)
    assert exact.nfe == full.nfe and sum(fed) < full_columns / 2


def test_one_block_samples_as_the_full_attention_model():
    """Block size >= the canvas: the block-causal sampler is the full-attention one."""
    full = tiny_model("llama").double()
    cfg = {**vars(full.config), "attention": "block_causal", "block_size": 64}
    block = DiffusionLM(full.backbone, DiffusionConfig(**cfg))
    for prompt in PROMPTS:
        ids = torch.tensor([prompt])
        for options in (dict(steps=12), dict(steps=6, policy="margin"), dict(steps=12, threshold=0.3)):
            a = generate(full, ids, max_new_tokens=12, **options)
            b = generate(block, ids, max_new_tokens=12, **options)
            assert torch.equal(a.sequences, b.sequences) and a.nfe == b.nfe


@pytest.mark.parametrize("cache", ["none", "prefix"])
def test_block_size_one_with_a_step_per_block_is_ar_greedy_decoding(cache):
    ar = tiny_model("gpt2", attention="causal")
    with torch.no_grad():  # the mask token is never the argmax (the sampler never proposes it)
        ar.backbone.get_input_embeddings().weight[MASK_ID].zero_()
    cfg = {**vars(ar.config), "attention": "block_causal", "block_size": 1}
    block = DiffusionLM(ar.backbone, DiffusionConfig(**cfg))
    ids, mask = _batch(PROMPTS)
    greedy = generate(ar, ids, mask, max_new_tokens=10)
    diffusion = generate(block, ids, mask, max_new_tokens=10, steps=10, cache=cache)
    assert torch.equal(diffusion.sequences, greedy.sequences)
    assert diffusion.nfe == 10


def test_stream_ends_on_generates_region_and_reports_the_usual_layout():
    model = _block_model()
    ids, mask = _batch(PROMPTS)
    out = generate(model, ids, mask, max_new_tokens=10, steps=10, cache="prefix")
    events = list(stream(model, ids, mask, max_new_tokens=10, steps=10, cache="prefix"))
    assert events[-1].region.shape == (4, 10)
    assert torch.equal(events[-1].region, out.generated)
    seen = torch.zeros(4, 10, dtype=torch.bool)
    for event in events:
        seen |= event.committed
    assert seen.all()  # every region position of every row is committed by some step
    history = generate(model, ids, mask, max_new_tokens=10, steps=10, output_history=True).history
    # each row takes one step per token; ragged rows fill their blocks unevenly, so the loop
    # runs each block for the most steps any row takes in it
    assert len(history) == len(events) + 1 == out.nfe + 1 >= 11
    assert torch.equal(history[-1], out.sequences)
    assert (history[0][:, ids.shape[1] :] == MASK_ID).all()


def test_infilling_pins_tokens_of_the_usual_region():
    model = _block_model()
    ids, mask = _batch(PROMPTS)
    fixed = torch.full((4, 10), -1)
    fixed[:, 7] = 21
    fixed[2, 0] = 22
    out = generate(model, ids, mask, max_new_tokens=10, steps=10, fixed=fixed, cache="prefix")
    assert (out.generated[:, 7] == 21).all() and out.generated[2, 0] == 22
    alone = generate(model, ids[2:3, -2:], max_new_tokens=10, steps=10, fixed=fixed[2:3], cache="prefix")
    assert torch.equal(alone.generated[0], out.generated[2])


def test_rows_end_at_eos_and_later_blocks_are_skipped():
    """A row ends at an EOS with nothing masked before it; once every row has ended, the
    blocks after are never run (threshold 0 fills a block per forward)."""
    model = _block_model("llama", block_size=4, dtype=torch.float32)
    ids, mask = _batch(PROMPTS)
    fixed = torch.full((4, 16), -1)
    fixed[:3, 5] = EOS_ID  # the second block of rows 0-2 (their leads: 1, 1, 2 prompt tokens)
    fixed[3, 0] = EOS_ID
    out = generate(model, ids, mask, max_new_tokens=16, steps=16, fixed=fixed, cache="prefix", threshold=0.0)
    assert (out.generated[:3, 6:] == PAD_ID).all() and (out.generated[3, 1:] == PAD_ID).all()
    assert out.nfe == 2  # blocks one and two; the last two are skipped
    free = generate(model, ids, mask, max_new_tokens=16, steps=16, cache="prefix", threshold=0.0)
    assert free.nfe == 5  # without the EOS: every block of the longest lead's row


def test_refusals_before_any_forward():
    model = _block_model()
    ids = torch.tensor([[5, 6, 7]])
    with pytest.raises(SettingsError, match="must divide the model's block_size 4"):
        generate(model, ids, max_new_tokens=8, block_length=3)
    with pytest.raises(SettingsError, match="remask"):
        generate(model, ids, max_new_tokens=8, policy="remask")
    with pytest.raises(DlmUserError, match="compile"):
        generate(model, ids, max_new_tokens=8, compile=True)
    with pytest.raises(DlmUserError, match="at least one token"):
        generate(model, torch.tensor([[5], [6]]), torch.tensor([[0], [1]]), max_new_tokens=8)
