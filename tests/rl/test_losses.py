"""GRPO's named pieces against hand-computed values."""

from __future__ import annotations

import math

import pytest
import torch

from dlm.rl import (
    clipped_surrogate,
    group_advantages,
    informative_groups,
    k3_kl,
    masked_mean,
    refill_groups,
    weighted_likelihood_loss,
)


def test_group_advantages_centre_and_scale_within_each_group():
    rewards = torch.tensor([1.0, 0.0, 0.0, 1.0, 2.0, 2.0, 2.0, 2.0])
    centred = group_advantages(rewards, 4, scale=False)
    torch.testing.assert_close(centred, torch.tensor([0.5, -0.5, -0.5, 0.5, 0, 0, 0, 0]))
    scaled = group_advantages(rewards, 4)
    std = torch.tensor([1.0, 0.0, 0.0, 1.0]).std().item()  # unbiased, as torch and TRL
    torch.testing.assert_close(scaled[:4], centred[:4] / (std + 1e-4))
    assert torch.equal(scaled[4:], torch.zeros(4))


def test_group_advantages_refuse_a_partial_group():
    with pytest.raises(ValueError, match="whole groups of 4"):
        group_advantages(torch.zeros(6), 4)


def test_informative_groups_and_their_refill():
    rewards = torch.tensor([0.0, 0, 1, 1, 0, 1, 1, 1, 0, 1])  # groups of 2
    informative = informative_groups(rewards, 2)
    assert informative.tolist() == [False, False, True, False, True]
    assert refill_groups(informative).tolist() == [2, 4, 2, 2, 4]
    assert refill_groups(torch.tensor([False, False])).tolist() == [0, 1]
    assert refill_groups(torch.tensor([True, True])).tolist() == [0, 1]


def test_clipped_surrogate_matches_the_formula_token_by_token():
    old = torch.zeros(2, 3)
    new = torch.log(torch.tensor([[1.5, 0.9, 1.0], [0.5, 1.1, 2.0]]))
    advantages = torch.tensor([1.0, -2.0])
    scored = torch.tensor([[True, True, False], [True, True, True]])
    loss, clip = clipped_surrogate(new, old, advantages, scored, clip_low=0.2, clip_high=0.28)
    # row 0 (A = 1): min(1.5, 1.28) = 1.28, min(0.9, 0.9) = 0.9; row 1 (A = -2):
    # min(-1.0, -1.6) = -1.6, min(-2.2, -2.2) = -2.2, min(-4, -2.56) = -4
    expected = -(1.28 + 0.9 - 1.6 - 2.2 - 4.0) / 5
    assert loss.item() == pytest.approx(expected, rel=1e-6)
    # clipped: row 0 col 0 (ratio > 1.28, A > 0) and row 1 col 0 (ratio < 0.8, A < 0)
    assert clip.item() == pytest.approx(2 / 5)


def test_the_clipped_region_carries_no_gradient():
    new = torch.log(torch.tensor([[2.0, 1.0]])).requires_grad_(True)
    loss, _ = clipped_surrogate(
        new, torch.zeros(1, 2), torch.tensor([1.0]), torch.ones(1, 2, dtype=torch.bool)
    )
    loss.backward()
    assert new.grad[0, 0] == 0 and new.grad[0, 1] < 0


def test_k3_kl_is_zero_at_equality_and_positive_elsewhere():
    new = torch.tensor([-1.0, -2.0, -0.5])
    assert torch.equal(k3_kl(new, new), torch.zeros(3))
    kl = k3_kl(new, torch.tensor([-1.5, -1.0, -0.5]))
    assert kl[0] == pytest.approx(math.exp(-0.5) + 0.5 - 1) and kl[1] == pytest.approx(math.e - 2)
    assert (kl >= 0).all()


def test_weighted_likelihood_loss_is_wd1s_softmax_weights():
    logp = torch.tensor([-1.0, -2.0, -3.0, -4.0])
    adv = torch.tensor([1.0, -1.0, 0.0, 0.0])
    loss = weighted_likelihood_loss(logp, adv, 2, psi=2.0)
    p = math.exp(2) / (math.exp(2) + math.exp(-2))
    first = (1 - p) * -1.0 + p * -2.0 - (p * -1.0 + (1 - p) * -2.0)
    assert loss.item() == pytest.approx(first / 2)  # the second group (all equal) adds 0


def test_masked_mean_is_zero_where_nothing_is_scored():
    assert masked_mean(torch.ones(2, 2), torch.zeros(2, 2, dtype=torch.bool)).item() == 0
    assert masked_mean(torch.tensor([1.0, 3.0]), torch.tensor([True, False])).item() == 1
