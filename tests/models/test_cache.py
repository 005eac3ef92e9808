"""The model's step forward: head only on the read columns, equal to the full forward there;
cache windows written in place; the attention mode set once, where the model is built."""

from __future__ import annotations

import pytest
import torch

from dlm.models import DiffusionLM
from helpers import MASK_ID, tiny_model


def _canvas(ragged: bool, empty_row: bool):
    ids = torch.randint(5, 40, (3, 14), generator=torch.Generator().manual_seed(1))
    ids[:, 6:] = MASK_ID
    mask = torch.ones_like(ids)
    if ragged:
        mask[1, :3] = 0
    if empty_row:
        mask[2, :6] = 0  # a row whose prompt is all padding: its first real token is column 6
    return ids, (mask if ragged or empty_row else None)


@pytest.mark.parametrize("arch, shift", [("gpt2", True), ("llama", True), ("qwen2", False)])
@pytest.mark.parametrize("ragged, empty_row", [(False, False), (True, False), (True, True)])
@pytest.mark.parametrize("lo, hi", [(6, 14), (6, 10), (10, 14)])
def test_head_on_the_block_equals_the_full_forward_there(arch, shift, ragged, empty_row, lo, hi):
    model = tiny_model(arch, shift=shift)
    ids, mask = _canvas(ragged, empty_row)
    reference = model(ids, mask)[:, lo:hi]
    step = model.step_forward(mask, ids.shape[1], prompt_length=6, batch=3)
    step.start_block(lo, hi)
    torch.testing.assert_close(step(ids), reference, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("shift", [True, False])
def test_the_lm_head_sees_only_the_columns_a_step_reads(shift):
    model = tiny_model("llama", shift=shift)
    ids, mask = _canvas(ragged=True, empty_row=False)
    seen = []
    head = model.backbone.get_output_embeddings()
    handle = head.register_forward_hook(lambda m, args, out: seen.append(args[0].shape[1]))
    step = model.step_forward(mask, ids.shape[1], prompt_length=6, batch=3)
    step.start_block(10, 14)
    step(ids)
    handle.remove()
    assert seen == [4]  # 4 columns of 14; the shift picks columns 9..12 instead of 10..13


@pytest.mark.parametrize("cache", ["prefix", "dual"])
def test_a_cached_step_writes_its_window_into_the_refreshed_cache_in_place(cache):
    model = tiny_model("llama")
    ids, mask = _canvas(ragged=True, empty_row=False)
    step = model.step_forward(mask, ids.shape[1], prompt_length=6, batch=3, cache=cache)
    step.start_block(6, 10)
    first = step(ids)  # the refresh
    keys = step.cache.layers[0].keys
    pointer, before = keys.data_ptr(), keys.clone()
    ids = ids.clone()
    ids[:, 6] = 7  # commit a token in the block
    second = step(ids)
    after = step.cache.layers[0].keys
    assert after.data_ptr() == pointer  # no new cache tensor per step
    window = slice(5, 10 if cache == "dual" else 14)  # a shifted model's window starts at 5
    assert not torch.equal(after[:, :, window], before[:, :, window])  # fresh keys written
    assert torch.equal(after[:, :, :5], before[:, :, :5])  # the prefix is kept as refreshed
    assert not torch.equal(first, second)  # the step saw the committed token


def test_a_loaded_model_is_bidirectional_before_anything_else_runs(tmp_path):
    tiny_model("llama").save_pretrained(tmp_path)
    model = DiffusionLM.from_pretrained(tmp_path)
    ids = torch.randint(5, 40, (1, 8), generator=torch.Generator().manual_seed(0))
    changed = ids.clone()
    changed[0, 7] = 9 if ids[0, 7] != 9 else 10
    raw = lambda x: model.backbone_call(x)[0]  # noqa: E731 - the public raw forward
    assert not torch.allclose(raw(ids)[:, 0], raw(changed)[:, 0])  # column 0 sees column 7
    ar = tiny_model("llama", attention="causal")
    torch.testing.assert_close(ar.backbone_call(ids)[0][:, 0], ar.backbone_call(changed)[0][:, 0])
