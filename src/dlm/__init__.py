"""dlm: discrete (masked) diffusion language models — train, adapt, sample, evaluate.

``dlm.load_model(path)`` opens a dlm checkpoint or a published one (Dream, LLaDA, DiffuGPT,
DiffuLLaMA); ``dlm.DlmUserError`` is the base of every error a user can cause. Both are
resolved on first use, so ``import dlm`` stays free of torch and transformers.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from dlm.errors import DlmUserError

if TYPE_CHECKING:
    from dlm.checkpoints import load_model

__version__ = "0.1.0"

__all__ = ["DlmUserError", "__version__", "load_model"]


def __getattr__(name: str) -> Any:
    if name == "load_model":
        from dlm.checkpoints import load_model

        return load_model
    raise AttributeError(f"module 'dlm' has no attribute {name!r}")
