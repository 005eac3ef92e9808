"""``PRoLoRALinear``: shapes and counts, the rolled blocks, LoRA as a special case, merge, init."""

from __future__ import annotations

import copy
import math

import pytest
import torch
from peft import LoraConfig, inject_adapter_in_model
from torch import nn
from transformers.pytorch_utils import Conv1D

from dlm.peft import PeftSettings, PRoLoRALinear, init_bound, matrix_parameters, rolled_index


def _base(kind: str, d_in: int, d_out: int, seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    if kind == "linear":
        return nn.Linear(d_in, d_out)
    layer = Conv1D(d_out, d_in)  # Conv1D(nf=d_out, nx=d_in): weight d_in x d_out
    nn.init.normal_(layer.weight, std=0.2)
    nn.init.normal_(layer.bias, std=0.2)
    return layer


def _randomise(layer: PRoLoRALinear, seed: int = 1) -> PRoLoRALinear:
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in (layer.lora_A, layer.lora_B, layer.lora_A_vec, layer.lora_B_vec):
            p.copy_(torch.randn(p.shape, generator=gen))
    return layer


def _shift(s: int) -> torch.Tensor:
    """R with (R X)[i] = X[(i + 1) mod s]."""
    r = torch.zeros(s, s)
    r[torch.arange(s), (torch.arange(s) + 1) % s] = 1.0
    return r


@pytest.mark.parametrize("kind", ["linear", "conv1d"])
@pytest.mark.parametrize(
    ("d_in", "d_out", "r", "u", "m", "n"),
    [(13, 10, 5, 2, 3, 4), (7, 11, 4, 0, 2, 3), (9, 9, 3, 3, 2, 2), (16, 12, 6, 1, 1, 5)],
)
def test_parameter_shapes_and_count_follow_the_formula(kind, d_in, d_out, r, u, m, n):
    settings = PeftSettings(method="prolora", r=r, u=u, m=m, n=n)
    layer = PRoLoRALinear(_base(kind, d_in, d_out), settings)
    assert layer.lora_A.shape == (r - u, math.ceil(d_in / m))
    assert layer.lora_B.shape == (math.ceil(d_out / n), r - u)
    assert layer.lora_A_vec.shape == (u, d_in)
    assert layer.lora_B_vec.shape == (d_out, u)
    trainable = [p for p in layer.parameters() if p.requires_grad]
    assert sum(p.numel() for p in trainable) == matrix_parameters(d_in, d_out, settings)
    assert matrix_parameters(d_in, d_out, settings) == u * (d_in + d_out) + (r - u) * (
        math.ceil(d_in / m) + math.ceil(d_out / n)
    )
    assert not any(p.requires_grad for p in layer.base_layer.parameters())
    a, b = layer.lora_factors()
    assert a.shape == (r, d_in) and b.shape == (d_out, r)
    assert layer.delta_weight().shape == layer.base_layer.weight.shape


@pytest.mark.parametrize("rotation", [True, False])
@pytest.mark.parametrize(
    ("d_in", "d_out", "r", "m", "n"),
    [(13, 10, 5, 3, 4), (12, 12, 4, 2, 2), (20, 9, 6, 4, 3), (11, 7, 2, 3, 2), (8, 8, 7, 2, 3)],
)
def test_rolled_blocks_equal_b0_r_power_a0(rotation, d_in, d_out, r, m, n):
    settings = PeftSettings(method="prolora", r=r, u=1, m=m, n=n, rotation=rotation)
    layer = _randomise(PRoLoRALinear(_base("linear", d_in, d_out), settings))
    with torch.no_grad():  # the unshared ranks add B_vec A_vec everywhere; test the shared part
        layer.lora_A_vec.zero_()
        delta = layer.delta_weight() / layer.scale
    s = r - 1
    a0, b0, rot = layer.lora_A.detach(), layer.lora_B.detach(), _shift(s)
    step_a, step_b = max(s // m, 1), max(s // n, 1)
    cin, cout = math.ceil(d_in / m), math.ceil(d_out / n)
    blocks = []
    for i in range(n):
        for j in range(m):
            rows, cols = (
                slice(i * cout, min((i + 1) * cout, d_out)),
                slice(j * cin, min((j + 1) * cin, d_in)),
            )
            block = delta[rows, cols]
            if block.numel() == 0:
                continue
            power = (j * step_a - i * step_b) % s if rotation else 0
            expected = b0 @ torch.linalg.matrix_power(rot, power) @ a0
            torch.testing.assert_close(block, expected[: block.shape[0], : block.shape[1]])
            blocks.append((block, expected))
    if not rotation:  # every block is B0 A0 (truncated at the edges)
        full = b0 @ a0
        for block, _ in blocks:
            torch.testing.assert_close(block, full[: block.shape[0], : block.shape[1]])


def test_rolled_index_and_shift_sizes():
    assert rolled_index(6, 2).tolist() == [[0, 1, 2, 3, 4, 5], [3, 4, 5, 0, 1, 2]]
    assert rolled_index(3, 4).tolist()[3] == [0, 1, 2]  # step max(3 // 4, 1) = 1: 3 * 1 mod 3
    assert rolled_index(5, 2, rotation=False).tolist() == [list(range(5))] * 2


def _hand_lora(base: nn.Module, a: torch.Tensor, b: torch.Tensor, scale: float, x: torch.Tensor):
    return base(x) + scale * (x @ a.T) @ b.T


def _stock_peft(base: nn.Module, a: torch.Tensor, b: torch.Tensor, settings: PeftSettings):
    holder = nn.Module()
    holder.lin = copy.deepcopy(base)
    config = LoraConfig(
        r=settings.r,
        lora_alpha=settings.alpha,
        target_modules=["lin"],
        fan_in_fan_out=isinstance(base, Conv1D),
    )
    inject_adapter_in_model(config, holder)
    with torch.no_grad():
        holder.lin.lora_A["default"].weight.copy_(a)
        holder.lin.lora_B["default"].weight.copy_(b)
    return holder.lin


@pytest.mark.parametrize("kind", ["linear", "conv1d"])
@pytest.mark.parametrize("case", [{"u": 4, "m": 3, "n": 2}, {"u": 0, "m": 1, "n": 1}])
def test_u_equals_r_or_no_sharing_is_exactly_lora(kind, case):
    settings = PeftSettings(method="prolora", r=4, alpha=8.0, **case)
    base = _base(kind, 10, 14)
    layer = _randomise(PRoLoRALinear(base, settings)).eval()
    if case["u"] == 4:
        a, b = layer.lora_A_vec.detach(), layer.lora_B_vec.detach()
    else:
        a, b = layer.lora_A.detach(), layer.lora_B.detach()
    x = torch.randn(3, 5, 10)
    with torch.no_grad():
        got = layer(x)
        torch.testing.assert_close(got, _hand_lora(base, a, b, layer.scale, x), rtol=0, atol=1e-6)
        stock = _stock_peft(base, a, b, settings)
        torch.testing.assert_close(got, stock(x), rtol=0, atol=1e-6)
    assert torch.equal(layer.lora_factors()[0], a) and torch.equal(layer.lora_factors()[1], b)


@pytest.mark.parametrize("kind", ["linear", "conv1d"])
def test_merged_layer_computes_the_same(kind):
    settings = PeftSettings(method="prolora", r=6, u=2, m=3, n=2, alpha=4.0)
    layer = _randomise(PRoLoRALinear(_base(kind, 17, 23), settings)).eval()
    with torch.no_grad():
        layer.lora_B.mul_(0.1)
        layer.lora_B_vec.mul_(0.1)
    merged = layer.merge()
    assert type(merged) is type(layer.base_layer) and merged is not layer.base_layer
    x = torch.randn(4, 17)
    with torch.no_grad():
        torch.testing.assert_close(merged(x), layer(x), rtol=0, atol=1e-5)
        a, b = layer.lora_factors()
        delta = layer.scale * (b @ a)
        expected = delta.T if kind == "conv1d" else delta
        torch.testing.assert_close(layer.delta_weight(), expected)
        # the base layer itself is untouched
        assert not torch.equal(merged.weight, layer.base_layer.weight)


@pytest.mark.parametrize("init", ["rectified", "naive"])
def test_init_bound_rectified_uses_full_d_in(init):
    d_in, m = 64, 4
    settings = PeftSettings(method="prolora", r=16, u=4, m=m, n=2, init=init)
    layer = PRoLoRALinear(_base("linear", d_in, 32), settings)
    bound = 1 / math.sqrt(d_in) if init == "rectified" else 1 / math.sqrt(d_in // m)
    assert init_bound(d_in, m, init) == pytest.approx(bound)
    for p in (layer.lora_A, layer.lora_A_vec):
        assert p.abs().max() <= bound
        assert p.abs().max() > 0.8 * bound
    assert not layer.lora_B.any() and not layer.lora_B_vec.any()


def test_fresh_adapter_changes_nothing_and_dropout_hits_only_the_branch():
    base = _base("linear", 8, 8)
    layer = PRoLoRALinear(base, PeftSettings(method="prolora", r=4, dropout=0.5)).train()
    x = torch.randn(16, 8)
    torch.testing.assert_close(layer(x), base(x), rtol=0, atol=0)  # B = 0
    _randomise(layer)
    with torch.no_grad():
        torch.manual_seed(0)
        train = layer(x)
        layer.eval()
        eval_ = layer(x)
        assert not torch.allclose(train, eval_)
        torch.manual_seed(0)
        dropped = nn.functional.dropout(x, 0.5, training=True)  # the same draw as the layer's
        a, b = layer.lora_factors()
        torch.testing.assert_close(train, base(x) + layer.scale * (dropped @ a.T) @ b.T)
