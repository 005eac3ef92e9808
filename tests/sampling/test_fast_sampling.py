"""Blocks, commit rules, caches, streaming and skipped work of the sampling loop."""

import pytest
import torch

from dlm.errors import SettingsError
from dlm.sampling import (
    factor_commit,
    generate,
    penalize_end_tokens,
    plan_blocks,
    stream,
    threshold_commit,
)
from dlm.sampling.canvas import build_canvas
from helpers import EOS_ID, MASK_ID, PAD_ID, tiny_model


def _score(p, policy):
    top = torch.topk(p, 2).values
    return {
        "confidence": top[0],
        "margin": top[0] - top[1],
        "entropy": (p * p.clamp_min(1e-30).log()).sum(),
    }[policy]


@torch.no_grad()
def reference_blocks(model, prompt, n_new, steps, block_length, policy="confidence"):
    """One row, temperature 0, LLaDA-style blocks written plainly."""
    x = torch.cat([prompt, torch.full((n_new,), MASK_ID)]).unsqueeze(0)
    p0 = prompt.shape[0]
    n_blocks = -(-n_new // block_length)
    for b in range(n_blocks):
        lo, hi = p0 + b * block_length, min(p0 + (b + 1) * block_length, p0 + n_new)
        b_steps = steps // n_blocks + (1 if b < steps % n_blocks else 0)
        n_masked = hi - lo
        for i in range(b_steps):
            masked = [j for j in range(lo, hi) if x[0, j] == MASK_ID]
            if not masked:
                break
            logits = model(x)[0].clone()
            logits[:, MASK_ID] = float("-inf")
            probs = torch.softmax(logits, -1)
            k = (
                len(masked)
                if i == b_steps - 1
                else n_masked // b_steps + (1 if i < n_masked % b_steps else 0)
            )
            for j in sorted(masked, key=lambda j: -float(_score(probs[j], policy)))[:k]:
                x[0, j] = int(probs[j].argmax())
    return x[0, p0:]


@pytest.mark.parametrize("policy", ["confidence", "margin", "entropy"])
@pytest.mark.parametrize("block_length, steps", [(4, 12), (3, 5), (5, 4)])
def test_blocks_match_plain_reference(policy, block_length, steps):
    model = tiny_model("llama")
    model.config.eos_token_id = None
    prompts = torch.randint(5, 40, (2, 4), generator=torch.Generator().manual_seed(7))
    if steps < -(-10 // block_length):
        with pytest.raises(ValueError, match="at least the number of blocks"):
            generate(model, prompts, max_new_tokens=10, steps=steps, block_length=block_length)
        return
    out = generate(
        model, prompts, max_new_tokens=10, steps=steps, block_length=block_length, policy=policy
    )
    for row in range(2):
        assert torch.equal(
            out.generated[row],
            reference_blocks(model, prompts[row], 10, steps, block_length, policy),
        )


def test_plan_blocks_splits_steps():
    blocks = plan_blocks(5, 10, 4, 7)
    assert [(b.start, b.end, b.steps) for b in blocks] == [(5, 9, 3), (9, 13, 2), (13, 15, 2)]
    assert plan_blocks(5, 10, None, 3)[0].steps == 3


def test_plan_blocks_by_tokens_gives_each_block_steps_in_proportion_to_what_it_fills():
    # a block-causal canvas: the first block's first two positions hold the prompt's tail
    free = torch.ones(2, 12, dtype=torch.bool)
    free[0, :2] = False
    free[1, 8:] = False  # the other row pins its last block whole
    blocks = plan_blocks(6, 12, 4, 10, free, by_tokens=True)
    # row 0: a step per token; () = every row with something to fill takes the block's steps
    assert [b.row_steps for b in blocks] == [(2, 5), (4, 5), ()]
    assert [b.steps for b in blocks] == [5, 5, 4]
    assert [b.row_steps for b in plan_blocks(6, 12, 4, 5, free, by_tokens=True)] == [
        (1, 3), (), ()
    ]
    assert [b.steps for b in plan_blocks(6, 12, 4, 10, free)] == [5, 5, 3]  # the even split


@pytest.mark.parametrize("block_length", [None, 4])
def test_threshold_one_with_one_token_per_step_equals_fixed_schedule(block_length):
    model = tiny_model("qwen2")
    model.config.eos_token_id = None
    prompts = torch.randint(5, 40, (3, 5), generator=torch.Generator().manual_seed(3))
    fixed = generate(model, prompts, max_new_tokens=8, steps=8, block_length=block_length)
    thresh = generate(model, prompts, max_new_tokens=8, threshold=1.0, block_length=block_length)
    assert torch.equal(fixed.sequences, thresh.sequences)
    assert thresh.nfe == fixed.nfe == 8


def test_threshold_zero_commits_a_whole_block_per_forward():
    model = tiny_model()
    model.config.eos_token_id = None
    out = generate(
        model, torch.randint(5, 40, (2, 4)), max_new_tokens=12, block_length=4, threshold=0.0
    )
    assert out.nfe == 3 and not (out.generated == MASK_ID).any()


def test_threshold_and_factor_rules_by_hand():
    conf = torch.tensor([[0.95, 0.5, 0.92, 0.1], [0.3, 0.2, 0.1, 0.05]])
    eligible = torch.tensor([[True, True, True, True], [True, True, False, False]])
    assert threshold_commit(conf, conf, eligible, 0.9).tolist() == [
        [True, False, True, False],
        [True, False, False, False],
    ]
    # factor 1: rank r accepted iff conf >= 1 - 1/(r+1): rank1 always, rank2 needs 0.667, rank3 0.75
    assert factor_commit(conf, eligible, 1.0).tolist() == [
        [True, False, True, False],
        [True, False, False, False],
    ]
    # factor 2: rank2 needs 1 - 2/3, rank3 needs 0.5
    assert factor_commit(conf, eligible, 2.0).tolist() == [
        [True, True, True, False],
        [True, False, False, False],
    ]


@pytest.mark.parametrize("cache", ["prefix", "dual"])
@pytest.mark.parametrize("arch_name, shift", [("gpt2", True), ("llama", True), ("qwen2", False)])
def test_cached_forward_is_exact_while_nothing_changed(cache, arch_name, shift):
    model = tiny_model(arch_name, shift=shift)
    ids = torch.randint(5, 40, (2, 5), generator=torch.Generator().manual_seed(0))
    mask = torch.ones_like(ids)
    mask[1, :2] = 0  # a ragged batch
    canvas = build_canvas(ids, mask, 12, mask_token_id=MASK_ID, pad_token_id=PAD_ID)
    canvas.tokens[:, 5:9] = torch.randint(5, 40, (2, 4))  # some committed tokens before the block
    block = plan_blocks(canvas.prompt_length, 12, 4, 6)[1]
    layout = dict(prompt_length=canvas.prompt_length, batch=2)
    full = model.step_forward(canvas.attention_mask, canvas.tokens.shape[1], **layout)
    cached = model.step_forward(canvas.attention_mask, canvas.tokens.shape[1], cache=cache, **layout)
    full.start_block(block.start, block.end)
    cached.start_block(block.start, block.end)
    reference = full(canvas.tokens)
    first = cached(canvas.tokens)  # the refresh: one full forward
    second = cached(canvas.tokens)  # reuses the cache
    torch.testing.assert_close(first, reference, atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(second, reference, atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("cache", ["none", "prefix", "dual"])
def test_ragged_batch_equals_rows_alone_with_blocks_caches_and_threshold(cache):
    model = tiny_model("llama")
    model.config.eos_token_id = None
    gen = torch.Generator().manual_seed(4)
    a, b = torch.randint(5, 40, (1, 6), generator=gen), torch.randint(5, 40, (1, 3), generator=gen)
    ids = torch.cat([a, torch.cat([torch.zeros(1, 3, dtype=torch.long), b], 1)])
    mask = torch.tensor([[1] * 6, [0] * 3 + [1] * 3])
    options = dict(max_new_tokens=12, block_length=4, cache=cache, threshold=0.05)
    batch = generate(model, ids, mask, **options)
    assert torch.equal(batch.generated[0], generate(model, a, **options).generated[0])
    assert torch.equal(batch.generated[1], generate(model, b, **options).generated[0])


def test_caches_keep_fixed_tokens_and_fill_every_mask():
    model = tiny_model()
    fixed = torch.full((2, 12), -1)
    fixed[:, 10:] = torch.tensor([11, 12])
    for cache in ["prefix", "dual"]:
        out = generate(
            model,
            torch.randint(5, 40, (2, 4)),
            max_new_tokens=12,
            block_length=4,
            cache=cache,
            fixed=fixed,
        )
        assert (
            torch.equal(out.generated[:, 10:], fixed[:, 10:])
            and not (out.generated == MASK_ID).any()
        )


def test_cached_sampling_refuses_empty_prompts_of_shifted_models():
    model = tiny_model(shift=True)
    ids = torch.tensor([[7, 8], [0, 0]])
    with pytest.raises(ValueError, match="at least one token"):
        generate(model, ids, torch.tensor([[1, 1], [0, 0]]), max_new_tokens=4, cache="prefix")


def test_stream_events_rebuild_the_generated_canvas():
    model = tiny_model()
    prompts = torch.randint(5, 40, (2, 4), generator=torch.Generator().manual_seed(5))
    options = dict(max_new_tokens=8, steps=4, block_length=4, seed=1)
    out = generate(model, prompts, **options)
    events = list(stream(model, prompts, **options))
    assert [e.step for e in events] == list(range(len(events)))
    assert events[-1].nfe == out.nfe
    rebuilt = torch.full((2, 8), MASK_ID)
    for event in events:
        assert not (rebuilt[event.committed] != MASK_ID).any()  # a position is committed once
        rebuilt[event.committed] = event.region[event.committed]
        assert event.tokens(0) == event.region[0][event.committed[0]].tolist()
    assert torch.equal(rebuilt, out.generated)


def test_steps_that_change_nothing_reuse_the_last_logits():
    model = tiny_model()
    model.config.eos_token_id = None
    events = list(
        stream(
            model, torch.randint(5, 40, (1, 3)), max_new_tokens=4, steps=64, policy="random", seed=0
        )
    )
    changed = sum(bool(e.committed.any()) for e in events)
    assert len(events) > changed  # some steps revealed nothing...
    assert events[-1].nfe == changed  # ...and cost no forward pass


def test_eos_penalty_by_hand_and_in_the_loop():
    logits = torch.zeros(2, 3, 6)
    out = penalize_end_tokens(logits, [3, 0], 2.0, torch.tensor([1.0, 0.0]))
    assert out[0, :, 3].tolist() == pytest.approx([2.0 * torch.log(torch.tensor(1e-3)).item()] * 3)
    assert out[1, :, 3].tolist() == pytest.approx([2.0 * torch.log(torch.tensor(1.001)).item()] * 3)
    assert out[:, :, 1].abs().sum() == 0
    model = tiny_model()
    with torch.no_grad():
        model.backbone.get_output_embeddings().weight[EOS_ID] *= 0
        model.backbone.get_output_embeddings().weight[EOS_ID, 0] = 0.0
    first = next(
        iter(stream(model, torch.randint(5, 40, (4, 3)), max_new_tokens=6, eos_penalty=50.0))
    )
    assert not ((first.region == EOS_ID) | (first.region == PAD_ID))[first.committed].any()


def test_remask_rejects_blocks_and_caches():
    model = tiny_model()
    with pytest.raises(ValueError, match="remask"):
        generate(
            model, torch.randint(5, 40, (1, 3)), max_new_tokens=4, policy="remask", block_length=2
        )


def test_compiled_forward_gives_the_same_tokens_and_is_reused():
    model = tiny_model("llama")
    model.config.eos_token_id = None
    prompts = torch.randint(5, 40, (2, 4), generator=torch.Generator().manual_seed(9))
    eager = generate(model, prompts, max_new_tokens=8, block_length=4, steps=4)
    compiled = generate(model, prompts, max_new_tokens=8, block_length=4, steps=4, compile=True)
    assert torch.equal(eager.sequences, compiled.sequences)
    again = generate(
        model, prompts.flip(0), max_new_tokens=8, block_length=4, steps=4, compile=True
    )
    assert torch.equal(again.sequences, eager.sequences.flip(0))
    with pytest.raises(ValueError, match="compile=True needs cache='none'"):
        generate(model, prompts, max_new_tokens=8, cache="prefix", compile=True)


def test_stream_rejects_unknown_options():
    with pytest.raises(SettingsError, match=r"unknown sampler argument setting 'blocklength'; did you mean 'block_length'"):
        next(iter(stream(tiny_model(), torch.randint(5, 40, (1, 3)), max_new_tokens=4, blocklength=2)))


def test_blocks_of_pinned_tokens_get_no_steps():
    free = torch.ones(2, 10, dtype=torch.bool)
    free[:, 4:] = False  # a pinned suffix covering blocks 2 and 3 (block 1 is half pinned)
    blocks = plan_blocks(3, 10, 3, 6, free)
    assert [b.steps for b in blocks] == [3, 3, 0, 0]
    model = tiny_model()
    model.config.eos_token_id = None
    fixed = torch.full((1, 12), -1)
    fixed[0, 4:] = torch.arange(10, 18)
    out = generate(
        model, torch.randint(5, 40, (1, 3)), max_new_tokens=12, steps=4, block_length=4, fixed=fixed
    )
    assert out.nfe == 4  # one forward per free token: no steps wasted on the pinned blocks


@pytest.mark.parametrize(
    "options, message",
    [
        ({"threshold": 1.5}, r"'threshold' must be in \[0, 1\]; got 1.5"),
        ({"factor": 0.0}, r"'factor' must be in \(0, inf\); got 0.0"),
        ({"threshold": 0.9, "factor": 1.0}, "either threshold or factor"),
        ({"cache": "paged"}, "'cache' must be one of: none, prefix, dual; got 'paged'"),
        ({"block_length": 0}, r"'block_length' must be in \[1, inf\); got 0"),
        ({"top_p": 0.0}, r"'top_p' must be in \(0, 1\]"),
        ({"policy": "greedy"}, "'policy' must be one of: random, confidence"),
    ],
)
def test_bad_sampler_options_are_clear_errors(options, message):
    with pytest.raises(SettingsError, match=message):
        generate(tiny_model(), torch.randint(5, 40, (1, 3)), max_new_tokens=4, **options)


def test_block_start_first_with_one_step_per_block_fills_each_block():
    model = tiny_model("llama")
    model.config.eos_token_id = None
    prompts = torch.randint(5, 40, (2, 3), generator=torch.Generator().manual_seed(2))
    out = generate(
        model, prompts, max_new_tokens=8, steps=2, block_length=4, block_start="first"
    )
    assert out.nfe == 2 and not (out.generated == MASK_ID).any()
    events = list(
        stream(model, prompts, max_new_tokens=8, steps=4, block_length=4, block_start="first")
    )
    first_step = events[0].committed  # exactly the block's first column, whatever its score
    assert first_step[:, 0].all() and first_step.sum() == 2


def test_plan_blocks_splits_each_rows_steps_over_its_own_blocks():
    free = torch.ones(3, 12, dtype=torch.bool)
    free[1, 4:8] = False  # row 1 pins block 1 whole
    free[2, :] = False  # row 2 pins everything
    blocks = plan_blocks(2, 12, 4, 7, free)
    # block 1: every row that fills it takes 2 steps, so one schedule for all (``uniform``)
    assert [b.row_steps for b in blocks] == [(3, 4, 0), (), (2, 3, 0)]
    assert [b.steps for b in blocks] == [4, 2, 3]  # the most any row takes
    uniform = plan_blocks(2, 12, 4, 7, torch.ones(2, 12, dtype=torch.bool))
    assert all(b.uniform for b in uniform) and [b.steps for b in uniform] == [3, 2, 2]


def test_too_few_steps_names_the_row_with_the_most_blocks_to_fill():
    free = torch.ones(2, 12, dtype=torch.bool)
    free[0, 4:] = False  # row 0 fills one block, row 1 all three
    assert [b.row_steps for b in plan_blocks(0, 12, 4, 2, free[:1])] == [()] * 3
    with pytest.raises(
        SettingsError,
        match=r"steps \(2\) must be at least the number of blocks to fill \(3 blocks of 4 in 12 "
        r"tokens in row 1\); raise steps or block_length",
    ):
        plan_blocks(0, 12, 4, 2, free)


@pytest.mark.parametrize("schedule", ["linear", "dream"])
@pytest.mark.parametrize("block_start", ["any", "first"])
def test_rows_commit_on_their_own_steps_when_blocks_are_pinned_in_some_rows(schedule, block_start):
    model = tiny_model("llama")
    model.config.eos_token_id = None
    fixed = torch.full((2, 12), -1)
    fixed[0, :4] = torch.arange(20, 24)  # row 0: block 0 pinned, 9 steps over blocks 1 and 2
    ids = torch.randint(5, 40, (2, 3), generator=torch.Generator().manual_seed(1))
    options = dict(
        max_new_tokens=12, block_length=4, steps=9, schedule=schedule, block_start=block_start
    )
    events = list(stream(model, ids, fixed=fixed, **options))

    def commits(events, row):  # per block: the row's commits per step, trailing zeros dropped
        out = []
        for b in range(3):
            counts = [int(e.committed[row].sum()) for e in events if e.block == b]
            while counts and counts[-1] == 0:
                counts.pop()
            out.append(counts)
        return out

    for row in range(2):
        alone = list(stream(model, ids[row : row + 1], fixed=fixed[row : row + 1], **options))
        assert commits(events, row) == commits(alone, 0), row
    row0 = commits(events, 0)
    assert row0[0] == [] and sum(row0[1]) == sum(row0[2]) == 4
    assert len([e for e in events if e.block == 0]) <= 3  # row 1's steps only
