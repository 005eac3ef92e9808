"""On a GPU: the fixed-schedule step makes no host synchronisation (CUDA's own sync detector).

``torch.cuda.set_sync_debug_mode("warn")`` flags every synchronising CUDA call, implicit ones
included (a boolean-mask index, ``nonzero``, ``.item()``). A run of 16 steps must raise exactly
as many as a run of 4: the reads are per block, none per step. Skipped without CUDA; the CPU
suite counts the explicit reads the same way (``test_settings.py``).
"""

from __future__ import annotations

import warnings

import pytest
import torch

from dlm.sampling import generate
from helpers import tiny_model

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


def _syncs(model, prompts, **options) -> int:
    torch.cuda.synchronize()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        torch.cuda.set_sync_debug_mode("warn")
        try:
            generate(model, prompts, max_new_tokens=16, stop_at_eos=False, **options)
        finally:
            torch.cuda.set_sync_debug_mode("default")
    return sum("synchroniz" in str(w.message) for w in caught)


@pytest.mark.parametrize("options", [{}, {"block_length": 8}, {"block_length": 8, "cache": "dual"}])
def test_fixed_schedule_steps_do_not_synchronise(options):
    model = tiny_model("llama").cuda()
    prompts = torch.randint(5, 40, (4, 3), device="cuda")
    generate(model, prompts, max_new_tokens=16, steps=4, **options)  # warm-up
    assert _syncs(model, prompts, steps=16, **options) == _syncs(model, prompts, steps=4, **options)
