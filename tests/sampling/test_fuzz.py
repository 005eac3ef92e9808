"""Property tests of the sampler: many random calls, every property of every call.

The calls and the properties are ``sampling/sampler_properties.py`` (shared with
``benchmarks/sampler_fuzz.py``, which runs the same check for longer): seeded draws
(``random.Random``) of batch sizes, ragged prompts, policies, schedules, steps, blocks, block
starts, thresholds and factors, caches, pinned tokens (whole blocks pinned in some rows only),
temperatures, EOS penalty and stopping, reference rng modes and seeds, on tiny float64 models
(gpt2 and qwen2 shifted, llama unshifted). Every call must leave no mask, keep its prompt and
pinned tokens, pad after an ending EOS (pinned tokens kept), repeat itself under the same seed,
end ``stream`` on ``generate``'s region, and, when nothing is drawn at random, give each row
what the row gives alone.

Why float64: the tiny models' forward is not bitwise invariant to the batch shape and padding
width on a CPU (a row alone has another of both), by ~1e-7 in float32, which can flip a
near-tie of two scores; in float64 the difference is ~1e-16 and disappears in the sampler's
float32 scores. Why only deterministic settings for "alone": a batch shares one random stream,
so a stochastic row's draws depend on its position in the batch (``generate``'s docstring).

The named regressions below are cases the sweep found failing before the per-row block plan,
the per-row Dream counts and the in-loop EOS padding; each failed on the earlier code.
"""

from __future__ import annotations

import pytest
import torch

from dlm.sampling import generate, stream
from sampling.sampler_properties import (
    EOS_ID,
    MASK_ID,
    PAD_ID,
    PROPERTIES,
    build_model,
    run_fuzz,
)

CALLS, SEED = 200, 20240613

#: What the sweep must have drawn at least once, so that it cannot quietly stop testing a mode.
COVERAGE = {
    *(f"policy={p}" for p in ("random", "confidence", "margin", "entropy", "remask")),
    *(f"cache={c}" for c in ("none", "prefix", "dual")),
    "schedule=linear",
    "schedule=dream",
    "block_start=first",
    "blocks",
    "threshold",
    "factor",
    "temperature>0",
    "deterministic",
    "stochastic",
    "no stop_at_eos",
    "pinned",
    "block pinned whole in some rows only",
    "ragged (left padding)",
    "ragged (right padding)",
    "rng=dream",
    "rng=llada",
}


@pytest.fixture(scope="module")
def model():
    return build_model("llama", False)


def test_random_sampler_calls_keep_every_property():
    summary = run_fuzz(CALLS, SEED)
    assert summary.calls == CALLS
    missing = COVERAGE - set(summary.features)
    assert not missing, f"the sweep drew no call with {sorted(missing)}"
    assert summary.found["rows ended at an EOS"] > 0
    assert summary.found["rows with pinned tokens after their EOS"] > 0
    assert summary.features["deterministic"] > 20  # calls that checked "alone"
    shown = "\n".join(summary.violations[:5])
    assert not summary.violations, f"{len(summary.violations)} violations, the first:\n{shown}"
    assert set(PROPERTIES) >= {v.split(":")[0] for v in summary.violations}


def _alone(model, ids, fixed, **options):
    return [
        generate(model, ids[b : b + 1], fixed=fixed[b : b + 1], **options).generated[0]
        for b in range(ids.shape[0])
    ]


def _commits(events, row, block=None):
    """Positions ``row`` committed at each step (of ``block``), trailing zeros dropped."""
    counts = [int(e.committed[row].sum()) for e in events if block is None or e.block == block]
    while counts and counts[-1] == 0:
        counts.pop()
    return counts


def test_regression_a_block_pinned_whole_in_one_row_leaves_its_batch_mate_alone(model):
    """Row 1 pins block 1 whole: it splits its 6 steps over blocks 0 and 2 (3 each), row 0
    over all three (2 each). The batch-wide plan gave row 1 two steps in each block, so its
    tokens differed from its own run."""
    ids = torch.tensor([[5, 6, 7, 8], [5, 10, 11, 12]])
    fixed = torch.full((2, 12), -1)
    fixed[1, 4:8] = torch.tensor([13, 14, 15, 16])
    options = dict(max_new_tokens=12, block_length=4, steps=6, stop_at_eos=False)
    batch = generate(model, ids, fixed=fixed, **options).generated
    for row, solo in enumerate(_alone(model, ids, fixed, **options)):
        assert torch.equal(batch[row], solo), row
    events = list(stream(model, ids, fixed=fixed, **options))
    assert [_commits(events, 0, b) for b in range(3)] == [[2, 2], [2, 2], [2, 2]]
    assert [_commits(events, 1, b) for b in range(3)] == [[2, 1, 1], [], [2, 1, 1]]


def test_regression_dream_counts_are_each_rows_own(model):
    """schedule='dream' counted on the batch's mean number of masks: a row with more pinned
    tokens changed its batch mate's counts (row 0: 1, 2, 2, 2, 3 alone; 1, 1, ... with row 1)."""
    ids = torch.tensor([[6, 6, 7], [8, 9, 10]])
    fixed = torch.full((2, 10), -1)
    fixed[1, ::2] = torch.tensor([13, 14, 15, 16, 17])
    options = dict(max_new_tokens=10, steps=5, schedule="dream", stop_at_eos=False)
    batch = generate(model, ids, fixed=fixed, **options).generated
    for row, solo in enumerate(_alone(model, ids, fixed, **options)):
        assert torch.equal(batch[row], solo), row
    events = list(stream(model, ids, fixed=fixed, **options))
    for row in range(2):
        solo = list(stream(model, ids[row : row + 1], fixed=fixed[row : row + 1], **options))
        assert _commits(events, row) == _commits(solo, 0), row


def test_regression_dream_random_policy_with_a_one_step_block_start_rule(model):
    """A one-step block with block_start='first' (the forced step takes it whole) left the
    Dream grid of the random policy empty: IndexError."""
    out = generate(
        model, torch.tensor([[5, 6, 7]]), max_new_tokens=6, block_length=2, steps=3,
        policy="random", schedule="dream", block_start="first", seed=0,
    )
    assert not (out.generated == MASK_ID).any()


@pytest.mark.parametrize("policy", ["confidence", "remask"])
def test_regression_stream_ends_on_the_padding_generate_returns(policy):
    """EOS written before the row ended (position 0 still masked) stayed in ``stream``'s last
    canvas; only ``generate`` padded it. Now both end on the same region: the ending EOS, the
    masked gap padded, the pinned tokens kept."""
    model = build_model("gpt2", True, eos_bias=6.0)  # EOS is every position's proposal
    fixed = torch.full((1, 8), -1)
    fixed[0, 5:7] = torch.tensor([11, 12])
    options = dict(max_new_tokens=8, steps=8, fixed=fixed, policy=policy, remask_noise=0.0)
    ids = torch.tensor([[6, 6, 7]])
    expected = torch.tensor([[EOS_ID, PAD_ID, PAD_ID, PAD_ID, PAD_ID, 11, 12, PAD_ID]])
    out = generate(model, ids, output_history=True, **options)
    events = list(stream(model, ids, **options))
    assert torch.equal(out.generated, expected)
    assert torch.equal(events[-1].region, expected)
    assert torch.equal(out.history[-1][:, out.prompt_length :], expected)
    early = [e for e in events if e.region[0, 0] == MASK_ID and (e.region[0, 1:5] == EOS_ID).any()]
    assert early  # an EOS came in while position 0 was still masked
