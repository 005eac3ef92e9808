"""The three log-likelihood estimators: their masks, and exactness where the truth is known.

For a model whose prediction does not depend on its input, every token's log-probability is
the same in every masked copy, so each estimator must return it exactly; DiffuCoder's weighted
variant returns the documented multiple instead.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from dlm.rl import combine_coupled, draw_masks, token_logps

MASK_ID = 9


class InputIndependent(torch.nn.Module):
    """Logits that ignore the input: one learned distribution per position."""

    def __init__(self, length: int, vocab: int) -> None:
        super().__init__()
        self.logits = torch.nn.Parameter(
            torch.randn(length, vocab, generator=torch.Generator().manual_seed(0))
        )

    def forward(self, input_ids, attention_mask=None):
        return self.logits.unsqueeze(0).expand(input_ids.shape[0], -1, -1)


def _exact(model: InputIndependent, tokens: torch.Tensor) -> torch.Tensor:
    """(B, L) the true log-probability of every token."""
    logps = F.log_softmax(model.logits, -1)  # (L, V)
    return (
        logps.unsqueeze(0).expand(tokens.shape[0], -1, -1).gather(-1, tokens.unsqueeze(-1))[..., 0]
    )


def _layout(batch=3, prompt=4, completion=6):
    completion_mask = torch.zeros(batch, prompt + completion, dtype=torch.bool)
    completion_mask[:, prompt:] = True
    prompt_mask = ~completion_mask
    prompt_mask[0, 0] = False  # a padded prompt position: never part of the prompt
    return completion_mask, prompt_mask


def test_coupled_masks_score_every_completion_token_exactly_once_in_a_partial_copy():
    completion, prompt = _layout()
    plan = draw_masks("coupled", completion, prompt, generator=torch.Generator().manual_seed(1))
    full, below, above = plan.masks
    assert plan.copies == 3 and 0.2 <= plan.t <= 0.8
    assert torch.equal(full, completion)
    assert torch.equal(below ^ above, completion)  # disjoint, and together the completion
    assert not (below & above).any()
    assert not (plan.masks & prompt).any()  # the prompt stays clean


def test_coupled_ratio_is_drawn_in_the_given_range_and_is_shared_by_the_batch():
    completion, prompt = _layout(batch=64, completion=64)
    ts = []
    for seed in range(20):
        plan = draw_masks(
            "coupled",
            completion,
            prompt,
            generator=torch.Generator().manual_seed(seed),
            t_range=(0.3, 0.4),
        )
        ts.append(plan.t)
        share = plan.masks[1][completion].float().mean().item()
        assert abs(share - plan.t) < 0.05  # one t for every row and position
    assert min(ts) >= 0.3 and max(ts) <= 0.4 and len(set(ts)) == 20


@pytest.mark.parametrize("estimator", ["one_step", "weighted"])
def test_one_step_masks_the_whole_completion_and_a_share_of_the_prompt(estimator):
    completion, prompt = _layout(batch=200, prompt=50)
    plan = draw_masks(
        estimator,
        completion,
        prompt,
        generator=torch.Generator().manual_seed(0),
        prompt_mask_prob=0.15,
    )
    (masks,) = plan.masks
    assert plan.copies == 1 and plan.t is None
    assert torch.equal(masks & completion, completion)
    share = masks[prompt].float().mean().item()
    assert abs(share - 0.15) < 0.01
    assert not masks[0, 0]  # padding is never masked


def test_the_same_seed_draws_the_same_masks():
    completion, prompt = _layout()
    a = draw_masks("coupled", completion, prompt, generator=torch.Generator().manual_seed(5))
    b = draw_masks("coupled", completion, prompt, generator=torch.Generator().manual_seed(5))
    assert a.t == b.t and torch.equal(a.masks, b.masks)


@pytest.mark.parametrize("estimator", ["coupled", "one_step", "weighted"])
def test_each_estimator_is_exact_for_an_input_independent_model(estimator):
    completion, prompt = _layout()
    model = InputIndependent(10, 12)
    tokens = torch.randint(0, 12, (3, 10), generator=torch.Generator().manual_seed(2))
    plan = draw_masks(estimator, completion, prompt, generator=torch.Generator().manual_seed(3))
    estimate = token_logps(model, tokens, None, plan, MASK_ID)
    exact = _exact(model, tokens)
    torch.testing.assert_close(estimate, exact)


def test_diffucoder_weights_scale_each_token_by_its_copy():
    completion, prompt = _layout()
    model = InputIndependent(10, 12)
    tokens = torch.randint(0, 12, (3, 10), generator=torch.Generator().manual_seed(2))
    plan = draw_masks("coupled", completion, prompt, generator=torch.Generator().manual_seed(4))
    estimate = token_logps(model, tokens, None, plan, MASK_ID, coupled_weights="diffucoder")
    exact = _exact(model, tokens)
    t = plan.t
    expected = torch.where(plan.masks[1], (exact + exact / t) / 2, (exact + exact / (1 - t)) / 2)
    torch.testing.assert_close(estimate, expected)


def test_combine_coupled_reads_the_partial_copy_where_each_token_was_masked():
    logps = torch.tensor([[[-1.0, -1.0]], [[-2.0, -5.0]], [[-7.0, -3.0]]])  # (3, 1, 2)
    masks = torch.tensor([[[True, True]], [[True, False]], [[False, True]]])
    out = combine_coupled(logps, masks, 0.25)
    torch.testing.assert_close(out, torch.tensor([[-1.5, -2.0]]))
    weighted = combine_coupled(logps, masks, 0.25, "diffucoder")
    torch.testing.assert_close(weighted, torch.tensor([[(-1 - 8) / 2, (-1 - 4) / 2]]))


def test_a_model_sees_the_mask_token_where_the_plan_masks():
    seen = {}

    class Spy(torch.nn.Module):
        def forward(self, input_ids, attention_mask=None):
            seen["ids"], seen["mask"] = input_ids, attention_mask
            return torch.zeros(*input_ids.shape, 12)

    completion, prompt = _layout()
    tokens = torch.randint(0, 9, (3, 10), generator=torch.Generator().manual_seed(2))
    attention = torch.ones(3, 10, dtype=torch.long)
    attention[0, 0] = 0
    plan = draw_masks("coupled", completion, prompt, generator=torch.Generator().manual_seed(0))
    token_logps(Spy(), tokens, attention, plan, MASK_ID)
    ids = seen["ids"].view(3, 3, 10)
    assert torch.equal(ids == MASK_ID, plan.masks)
    assert torch.equal(seen["mask"], attention.repeat(3, 1))
