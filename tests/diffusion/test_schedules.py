import math

import pytest
import torch

from dlm.diffusion import (
    CosineSchedule,
    DiscreteSchedule,
    LinearSchedule,
    make_schedule,
    sample_times,
)


def test_linear_schedule_values():
    s = LinearSchedule()
    t = torch.tensor([0.25, 0.5, 1.0])
    assert torch.allclose(s.alpha(t), torch.tensor([0.75, 0.5, 0.0]))
    assert torch.allclose(s.mask_prob(t), t)
    assert torch.allclose(s.elbo_weight(t), torch.tensor([4.0, 2.0, 1.0]))


def test_cosine_schedule_values_and_weight_matches_derivative():
    s = CosineSchedule()
    t = torch.tensor([0.5], dtype=torch.float64)
    assert s.alpha(t).item() == pytest.approx(math.cos(math.pi / 4))
    # -alpha'(t) / (1 - alpha(t)) by finite differences
    h = 1e-6
    deriv = (s.alpha(t + h) - s.alpha(t - h)) / (2 * h)
    assert s.elbo_weight(t).item() == pytest.approx((-deriv / (1 - s.alpha(t))).item(), rel=1e-6)
    assert s.alpha(torch.tensor([0.0])).item() == pytest.approx(1.0)
    assert s.alpha(torch.tensor([1.0])).item() == pytest.approx(0.0, abs=1e-7)


def test_discrete_schedule_maps_steps():
    s = DiscreteSchedule(20)
    t = torch.tensor([1 / 20, 5 / 20, 1.0])
    assert torch.equal(s.step_index(t), torch.tensor([1.0, 5.0, 20.0]))
    assert torch.allclose(s.mask_prob(t), torch.tensor([0.05, 0.25, 1.0]))
    assert torch.allclose(s.elbo_weight(t), torch.tensor([1.0, 0.2, 0.05]))


def test_make_schedule_errors():
    with pytest.raises(ValueError, match="num_steps"):
        make_schedule("discrete")
    with pytest.raises(ValueError, match="linear, cosine, discrete"):
        make_schedule("quadratic")


def test_sample_times_floor_and_range():
    torch.manual_seed(0)
    t = sample_times(10000, LinearSchedule(), eps=0.1)
    assert t.min() >= 0.1 and t.max() < 1.0
    assert t.mean().item() == pytest.approx(0.55, abs=0.01)


def test_stratified_times_cover_every_stratum():
    gen = torch.Generator().manual_seed(3)
    t = sample_times(8, LinearSchedule(), eps=0.0, stratified=True, generator=gen)
    strata = torch.sort(torch.floor(t * 8)).values
    assert torch.equal(strata, torch.arange(8, dtype=strata.dtype))


def test_discrete_times_are_integer_steps_and_stratified_spread():
    gen = torch.Generator().manual_seed(0)
    s = DiscreteSchedule(4)
    t = sample_times(1000, s, generator=gen)
    k = t * 4
    assert torch.allclose(k, torch.round(k)) and k.min() == 1 and k.max() == 4
    t = sample_times(8, s, stratified=True, generator=gen)
    assert torch.equal(torch.sort(t * 4).values, torch.tensor([1.0, 1, 2, 2, 3, 3, 4, 4]))
