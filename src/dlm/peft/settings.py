"""``PeftSettings``: what adapter to put on a ``DiffusionLM`` (the recipes' ``peft:`` section).

``method`` is ``lora`` (stock Hugging Face ``peft``) or ``prolora`` (``dlm.peft.prolora``).
PRoLoRA's knobs (Wang et al., ACL 2024):

* ``r``: the total rank; ``alpha / r`` scales the update, as in LoRA;
* ``u``: how many of the ``r`` ranks stay plain, unshared LoRA vectors (0 <= u <= r);
* ``m`` / ``n``: the sharing rates of A along ``d_in`` and of B along ``d_out`` (1 = no sharing);
* ``rotation``: roll each copy of the shared chunk along the rank axis (the paper's rotation
  enhancement; False is the ablation);
* ``init``: ``rectified`` draws A with the Kaiming-uniform bound of the full ``d_in``
  (1/sqrt(d_in)), ``naive`` with that of the chunk width ceil(d_in/m).

For ``method: lora`` those five knobs do not exist; giving one a value other than its default
is refused, so a recipe cannot believe it trains PRoLoRA when it does not.

``targets`` are module-name patterns (matching rule: ``dlm.peft.apply.match_targets``); the
empty tuple means the architecture's default, ``default_targets(backbone)``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Literal

from torch import nn

from dlm.config import ConfigError
from dlm.config import from_dict as _config_from_dict
from dlm.config import to_dict as _config_to_dict

__all__ = ["METHODS", "INITS", "PeftSettings", "PeftSettingsError", "default_targets"]

METHODS = ("lora", "prolora")
INITS = ("rectified", "naive")
#: PRoLoRA-only fields and their defaults (refused with another value under ``method: lora``).
_PROLORA_ONLY = {"u": 0, "m": 2, "n": 2, "rotation": True, "init": "rectified"}
#: Default targets by the backbone's ``config.model_type``: every projection of a block.
_DEFAULT_TARGETS = {
    "gpt2": ("c_attn", "c_proj", "c_fc"),
    "llama": ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"),
    "qwen2": ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"),
}


class PeftSettingsError(ConfigError):
    """A ``peft:`` setting outside its allowed values; the message names the field."""


def default_targets(backbone: nn.Module) -> tuple[str, ...]:
    """The projections adapted when ``targets`` is empty: GPT-2's ``c_attn``, ``c_proj``,
    ``c_fc``; LLaMA's and Qwen2's q, k, v, o, gate, up and down projections."""
    model_type = getattr(getattr(backbone, "config", None), "model_type", None)
    if model_type in _DEFAULT_TARGETS:
        return _DEFAULT_TARGETS[model_type]
    if model_type is not None and model_type.startswith(("llama", "qwen", "mistral")):
        return _DEFAULT_TARGETS["llama"]
    raise PeftSettingsError(
        f"no default peft.targets for a {model_type or type(backbone).__name__} backbone; "
        "list the linear layers to adapt in peft.targets"
    )


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


@dataclass(frozen=True)
class PeftSettings:
    """One adapter's settings; checked on construction (``PeftSettingsError``)."""

    method: Literal["lora", "prolora"] = "prolora"
    r: int = 8
    u: int = 0
    m: int = 2
    n: int = 2
    alpha: float = 16.0
    dropout: float = 0.0
    targets: tuple[str, ...] = ()
    rotation: bool = True
    init: Literal["rectified", "naive"] = "rectified"

    def __post_init__(self) -> None:
        if isinstance(self.targets, str):
            object.__setattr__(self, "targets", (self.targets,))
        elif isinstance(self.targets, list):
            object.__setattr__(self, "targets", tuple(self.targets))
        if self.method not in METHODS:
            raise PeftSettingsError(
                f"peft.method must be one of {', '.join(METHODS)}; got {self.method!r}"
            )
        if not _is_int(self.r) or self.r < 1:
            raise PeftSettingsError(f"peft.r must be an integer >= 1; got {self.r!r}")
        if not _is_int(self.u) or not 0 <= self.u <= self.r:
            raise PeftSettingsError(
                f"peft.u must be an integer with 0 <= u <= r = {self.r}; got {self.u!r}"
            )
        for name in ("m", "n"):
            value = getattr(self, name)
            if not _is_int(value) or value < 1:
                raise PeftSettingsError(f"peft.{name} must be an integer >= 1; got {value!r}")
        if (
            isinstance(self.alpha, bool)
            or not isinstance(self.alpha, (int, float))
            or not self.alpha > 0
        ):
            raise PeftSettingsError(f"peft.alpha must be a number > 0; got {self.alpha!r}")
        object.__setattr__(self, "alpha", float(self.alpha))
        if (
            isinstance(self.dropout, bool)
            or not isinstance(self.dropout, (int, float))
            or not 0 <= self.dropout < 1
        ):
            raise PeftSettingsError(
                f"peft.dropout must be a number in [0, 1); got {self.dropout!r}"
            )
        object.__setattr__(self, "dropout", float(self.dropout))
        if not isinstance(self.rotation, bool):
            raise PeftSettingsError(f"peft.rotation must be true or false; got {self.rotation!r}")
        if self.init not in INITS:
            raise PeftSettingsError(
                f"peft.init must be one of {', '.join(INITS)}; got {self.init!r}"
            )
        if not isinstance(self.targets, tuple) or not all(
            isinstance(t, str) and t.strip() for t in self.targets
        ):
            raise PeftSettingsError(
                f"peft.targets must be a list of module-name patterns; got {self.targets!r}"
            )
        if self.method == "lora":
            for name, default in _PROLORA_ONLY.items():
                if getattr(self, name) != default:
                    raise PeftSettingsError(
                        f"peft.{name} is a PRoLoRA setting and method lora has none; remove "
                        f"peft.{name} or set peft.method: prolora"
                    )

    @property
    def scale(self) -> float:
        """The update's scaling ``alpha / r``."""
        return self.alpha / self.r

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PeftSettings:
        """Settings from a mapping (a recipe's ``peft:`` section); unknown keys are refused."""
        if not isinstance(data, dict):
            raise PeftSettingsError(f"peft must be a mapping of its settings; got {data!r}")
        return _config_from_dict(cls, data, prefix="peft")

    def to_dict(self) -> dict[str, Any]:
        """A plain JSON/YAML-ready mapping that ``from_dict`` reads back."""
        return _config_to_dict(self)

    def replace(self, **changes: Any) -> PeftSettings:
        return dataclasses.replace(self, **changes)
