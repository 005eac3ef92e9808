"""``eval_mode``: run a block with a module in eval mode and restore its mode afterwards.

Sampling inside training (scheduled sampling), likelihood estimates and generation all switch
the model to eval mode for a while; the previous mode comes back even when the block raises,
so a failed call never leaves a training model with dropout off.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from torch import nn

__all__ = ["eval_mode"]


@contextlib.contextmanager
def eval_mode(model: nn.Module) -> Iterator[nn.Module]:
    """``with eval_mode(model):`` the block runs in eval mode; the old mode is restored after.

    Only the top-level ``training`` flag is remembered (``model.train(flag)`` sets every
    submodule to it), as ``model.train(was_training)`` would.
    """
    was_training = model.training
    model.eval()
    try:
        yield model
    finally:
        model.train(was_training)
