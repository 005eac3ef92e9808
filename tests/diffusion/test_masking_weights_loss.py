import math

import pytest
import torch

from dlm.diffusion import (
    DiscreteSchedule,
    LinearSchedule,
    cart_weights,
    complementary_masks,
    loss_weights,
    mask_tokens,
    masked_diffusion_loss,
    sequence_weights,
    token_reweighting,
)


def test_mask_tokens_respects_noisable_region_and_probability():
    torch.manual_seed(0)
    ids = torch.arange(10, 30).repeat(400, 1)
    noisable = torch.zeros_like(ids, dtype=torch.bool)
    noisable[:, 5:] = True
    p = torch.full((400,), 0.3)
    noisy, masked = mask_tokens(ids, noisable, p, mask_token_id=2)
    assert not masked[:, :5].any()
    assert torch.equal(noisy[:, :5], ids[:, :5])
    assert torch.equal(noisy[masked], torch.full((int(masked.sum()),), 2))
    assert torch.equal(noisy[~masked], ids[~masked])
    assert masked[:, 5:].float().mean().item() == pytest.approx(0.3, abs=0.01)


def test_mask_prob_one_masks_all_noisable():
    ids = torch.randint(5, 9, (3, 6))
    noisable = torch.ones_like(ids, dtype=torch.bool)
    _, masked = mask_tokens(ids, noisable, torch.ones(3), 2)
    assert masked.all()


def test_complementary_masks_partition_noisable_region():
    noisable = torch.tensor([[0, 1, 1, 1, 1, 1]], dtype=torch.bool).repeat(4, 1)
    t = torch.tensor([0.1, 0.5, 0.9, 0.3])
    a, ta, b, tb = complementary_masks(noisable, t, generator=torch.Generator().manual_seed(0))
    assert not (a & b).any()
    assert torch.equal(a | b, noisable)
    assert torch.allclose(ta + tb, torch.ones(4))


def test_sequence_weights_by_hand():
    t = torch.tensor([0.25, 0.5])
    assert torch.allclose(sequence_weights("elbo", t, LinearSchedule()), torch.tensor([4.0, 2.0]))
    d = DiscreteSchedule(20)
    td = torch.tensor([1 / 20, 20 / 20, 7 / 20])
    assert torch.allclose(sequence_weights("linear", td, d), torch.tensor([20.0, 1.0, 14.0]))
    assert torch.allclose(sequence_weights("none", t, LinearSchedule()), torch.ones(2))
    with pytest.raises(ValueError, match="discrete schedule"):
        sequence_weights("linear", t, LinearSchedule())


def test_cart_weights_by_hand():
    # positions: 0 clean, 1 masked, 2 masked, 3 clean; p = 0.5
    masked = torch.tensor([[False, True, True, False]])
    w = cart_weights(masked, p=0.5)
    # w_n = 0.5 * sum_{clean i} p (1-p)^(|n-i|-1)
    w1 = 0.5 * (0.5 * 0.5**0 + 0.5 * 0.5**1)  # i=0 at distance 1, i=3 at distance 2
    w2 = 0.5 * (0.5 * 0.5**1 + 0.5 * 0.5**0)
    assert torch.allclose(w, torch.tensor([[0.0, w1, w2, 0.0]]))


def test_cart_weight_prefers_tokens_near_context():
    masked = torch.zeros(1, 40, dtype=torch.bool)
    masked[0, 10:30] = True
    w = cart_weights(masked, p=0.1)[0]
    assert w[10] > w[15] > w[19]
    assert w[29] > w[25]


def test_token_reweighting_formula_and_gradient():
    ce = torch.tensor([0.0, 1.0, 3.0], requires_grad=True)
    v = token_reweighting(ce, alpha=0.25, beta=2.0)
    expected = [0.25 * (1 - math.exp(-c)) ** 2 for c in (0.0, 1.0, 3.0)]
    assert torch.allclose(v, torch.tensor(expected))
    v.sum().backward()
    # d/du alpha (1 - e^-u)^2 = 2 alpha (1 - e^-u) e^-u
    assert ce.grad[1].item() == pytest.approx(2 * 0.25 * (1 - math.exp(-1)) * math.exp(-1))


def test_masked_loss_by_hand():
    # two rows, vocab 3; logits zero -> CE = log 3 everywhere
    logits = torch.zeros(2, 3, 3)
    targets = torch.tensor([[0, 1, 2], [2, 1, 0]])
    masked = torch.tensor([[True, False, True], [False, False, True]])
    weights = loss_weights("elbo", torch.tensor([0.5, 0.25]), masked, LinearSchedule())
    out = masked_diffusion_loss(logits, targets, masked, weights)
    # sum of w * CE over masked = (2 + 2 + 4) * log 3; divided by 3 masked tokens
    assert out.loss.item() == pytest.approx(8 * math.log(3) / 3, rel=1e-6)
    assert out.ce.item() == pytest.approx(math.log(3), rel=1e-6)
    assert out.num_masked == 3


def test_masked_loss_ignores_unmasked_positions_and_reweights():
    logits = torch.randn(1, 4, 5, requires_grad=True)
    targets = torch.tensor([[1, 2, 3, 4]])
    masked = torch.tensor([[True, True, False, False]])
    base = masked_diffusion_loss(logits, targets, masked, masked.float())
    base.loss.backward()
    assert torch.all(logits.grad[0, 2:] == 0)
    ce = torch.nn.functional.cross_entropy(logits[0, :2], targets[0, :2], reduction="none")
    v = 0.25 * (1 - torch.exp(-ce))
    rew = masked_diffusion_loss(logits, targets, masked, masked.float(), token_reweight=(0.25, 1.0))
    assert rew.loss.item() == pytest.approx((v * ce).sum().item() / 2, rel=1e-5)
