"""``eval_mode`` switches a module to eval mode for a block and restores the old mode, even
when the block raises."""

from __future__ import annotations

import pytest
from torch import nn

from dlm.models import eval_mode


def _net() -> nn.Module:
    return nn.Sequential(nn.Linear(2, 2), nn.Dropout(0.5))


def test_eval_mode_restores_train_mode_after_an_exception() -> None:
    model = _net().train()
    with pytest.raises(KeyError), eval_mode(model):
        assert not model.training and not model[1].training
        raise KeyError("inside")
    assert model.training and all(m.training for m in model.modules())


def test_eval_mode_keeps_an_eval_model_in_eval_and_returns_it() -> None:
    model = _net().eval()
    with eval_mode(model) as inner:
        assert inner is model and not model.training
    assert not model.training
    model.train()
    with eval_mode(model):
        pass
    assert model.training
