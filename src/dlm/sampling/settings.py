"""``SamplerSettings``: the one public description of a sampling run.

Every way of asking for samples derives from these fields: ``dlm.sampling.generate``'s keyword
arguments, the ``dlm generate`` / ``dlm eval`` flags (``add_arguments`` generates them), the
lm-eval ``model_args`` and the server's request fields (``coerce`` reads their strings). A
value is checked once, here, with a message that names the field and what it allows.

Where a value comes from, highest first (``resolve``):

1. an explicit argument (a keyword of ``generate``, a CLI flag, an lm-eval ``model_arg``);
2. the recipe or the request (a demo's sampler, a server request's fields, an lm-eval task's
   ``max_gen_toks``);
3. the checkpoint's saved ``generation_defaults`` (a published model's own sampler defaults,
   kept by ``dlm convert``);
4. the library default below.

``None`` in a layer means "not given there". To switch off an optional setting a lower layer
set (a checkpoint's ``threshold`` or ``block_length``, say), give ``"off"`` (``--threshold off``
on the command line).

Fields that make dlm reproduce a published sampler exactly (``docs/reference-samplers.md``):
``schedule="dream"`` (Dream's float32 step counts), ``stop_at_eos=False`` (EOS and padding are
ordinary tokens, as in Dream, LLaDA and Fast-dLLM) and ``block_start="first"`` (Fast-dLLM's
Dream block rule), ``remask_carry=False`` (MGDM's and DiffuSearch's re-prediction of every
position), and ``rng="dream"`` / ``rng="llada"`` / ``rng="mgdm"`` (draw the random numbers as
those samplers do, so that stochastic runs match too; ``dlm.sampling.reference_rng``).
"""

from __future__ import annotations

import argparse
import dataclasses
import difflib
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from dlm.errors import SettingsError
from dlm.models.cache import CACHE_MODES

__all__ = [
    "BLOCK_STARTS",
    "CACHE_MODES",
    "POLICIES",
    "RNG_MODES",
    "SCHEDULES",
    "ResolvedSettings",
    "SamplerSettings",
]

POLICIES = ("random", "confidence", "margin", "entropy", "remask")
SCHEDULES = ("linear", "dream")
BLOCK_STARTS = ("any", "first")
RNG_MODES = ("dlm", "dream", "llada", "mgdm")

#: The value that switches an optional setting (``top_p``, ``threshold``, ``block_length``, ...)
#: off in a higher layer, over a value a lower layer (a checkpoint's defaults) set.
OFF = "off"

#: The layers of ``resolve``, highest precedence first (the names ``sources`` reports).
SOURCES = ("argument", "request", "checkpoint", "command default", "default")


def _setting(
    default: Any,
    help: str,
    *,
    choices: tuple[str, ...] | None = None,
    low: float | None = None,
    high: float | None = None,
    low_open: bool = False,
    flag: bool = True,
) -> Any:
    """A field with its CLI help, allowed values and range (bounds inclusive unless open)."""
    meta = {"help": help, "choices": choices, "low": low, "high": high, "low_open": low_open}
    return field(default=default, metadata={**meta, "flag": flag})


@dataclass(frozen=True)
class SamplerSettings:
    """How to sample: length, steps, decoding order, proposal, blocks, cache, stopping.

    Construct it with keywords (``SamplerSettings(policy="margin", steps=64)``); every value is
    validated on construction and a bad one raises ``SettingsError`` naming the field.
    """

    max_new_tokens: int | None = _setting(
        None, "length of the generation region (default: the command's or task's)", low=1
    )
    steps: int | None = _setting(
        None, "denoising steps of the fixed schedule, split over blocks (default: max-new-tokens)",
        low=1,
    )
    policy: str = _setting(
        "confidence",
        "decoding order: which masked positions to commit first (Dream's origin = random, "
        "maskgit_plus = confidence, topk_margin = margin; remask = MGDM easy-first)",
        choices=POLICIES,
    )
    schedule: str = _setting(
        "linear",
        "tokens per step: linear (n // steps, the remainder on the earliest steps, per row) or "
        "dream (Dream's float32 int(n * (1 - s/t)) on each row's count of masks, the rest on the last step)",
        choices=SCHEDULES,
    )
    temperature: float = _setting(0.0, "token sampling temperature (0 = greedy)", low=0.0)
    top_p: float | None = _setting(
        None, "nucleus filtering of the proposal (1 = off)", low=0.0, high=1.0, low_open=True
    )
    top_k: int | None = _setting(None, "keep the k most likely tokens (0 = off)", low=0)
    policy_temperature: float = _setting(
        0.0, "> 0 samples positions from softmax(score / T) instead of the top ones (Dream's alg_temp)",
        low=0.0,
    )
    block_length: int | None = _setting(
        None, "fill the region in semi-autoregressive blocks of this many tokens", low=1
    )
    block_start: str = _setting(
        "any",
        "first: commit each block's first position at its first step whatever its score "
        "(Fast-dLLM's Dream block sampler); any: by score only",
        choices=BLOCK_STARTS,
    )
    threshold: float | None = _setting(
        None,
        "commit every token above this probability (and each row's best) per step (Fast-dLLM)",
        low=0.0,
        high=1.0,
    )
    factor: float | None = _setting(
        None, "Fast-dLLM's factor rule instead of a threshold", low=0.0, low_open=True
    )
    cache: str = _setting(
        "none",
        "key/value cache: a full-attention model's is refreshed at each block start "
        "(approximate between refreshes); a block_causal model's prefix cache of committed "
        "blocks is exact, and its default",
        choices=CACHE_MODES,
    )
    eos_penalty: float = _setting(
        0.0, "Dream-Coder's annealed PAD/EOS logit penalty (0 = off)", low=0.0
    )
    stop_at_eos: bool = _setting(
        True,
        "a row ends at an EOS with nothing masked before it and the rest becomes padding; "
        "--no-stop-at-eos keeps EOS and padding as ordinary tokens (Dream, LLaDA, Fast-dLLM)",
    )
    eps: float = _setting(
        1e-3, "the last time of the grid linspace(1, eps, steps + 1)", low=0.0, high=1.0,
        low_open=True,
    )
    remask_noise: float = _setting(
        0.5, "Gumbel scale of policy remask (noise = remask_noise * t / T)", low=0.0
    )
    remask_hold: int = _setting(
        0,
        "policy remask: the first N generated positions stay masked until the last step "
        "(DiffuSearch holds its move so it is chosen after the future is)",
        low=0,
    )
    remask_carry: bool = _setting(
        True,
        "policy remask: a committed token keeps its token and the confidence it was committed "
        "with (dlm); --no-remask-carry re-predicts every generated position each step and "
        "re-masks by the current scores, as MGDM's and DiffuSearch's code do",
    )
    seed: int | None = _setting(None, "seeds every random draw of the run")
    rng: str = _setting(
        "dlm",
        "how random numbers are drawn: dlm (batched, its own stream); dream (Dream "
        "diffusion_generate's torch.rand / torch.multinomial calls, with schedule=dream, no "
        "blocks or cache); llada (LLaDA generate's float64 Gumbel noise over the whole canvas "
        "and, for policy=random, its uniform ranking with the linear counts; with a cache, "
        "Fast-dLLM's draws over the window it feeds); mgdm (the Gumbel noise of MGDM's and "
        "DiffuSearch's topk_masking over the whole canvas, with policy=remask "
        "--no-remask-carry). With a seed they replay the "
        "reference's global RNG after torch.manual_seed(seed)",
        choices=RNG_MODES,
    )
    compile: bool = _setting(
        False, "torch.compile the static-shape step forward (CUDA graphs on a GPU)"
    )

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            value = _checked(f, getattr(self, f.name))
            object.__setattr__(self, f.name, value)
        self._check_combinations()

    # ------------------------------------------------------------------ derived
    @property
    def adaptive(self) -> bool:
        """Threshold and factor rules choose their own number of steps."""
        return self.threshold is not None or self.factor is not None

    def steps_for(self, max_new_tokens: int) -> int:
        """The step count: ``steps``, or one token per step."""
        return max_new_tokens if self.steps is None else self.steps

    def replace(self, **changes: Any) -> SamplerSettings:
        """A copy with ``changes`` (``None`` values are ignored: "not given")."""
        changes = _known({k: v for k, v in changes.items() if v is not None}, "setting")
        return dataclasses.replace(self, **changes) if changes else self

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    # ------------------------------------------------------------------ validation
    def _check_combinations(self) -> None:
        if self.threshold is not None and self.factor is not None:
            raise SettingsError("give either threshold or factor, not both")
        if self.policy == "remask" and (
            self.block_length is not None or self.adaptive or self.cache != "none"
        ):
            raise SettingsError(
                "policy 'remask' re-predicts the whole canvas each step; it takes no "
                "block_length, threshold, factor or cache"
            )
        if self.remask_hold and self.policy != "remask":
            raise SettingsError(
                f"remask_hold={self.remask_hold} holds positions of policy 'remask'; "
                f"set policy='remask' or remask_hold=0"
            )
        if not self.remask_carry and self.policy != "remask":
            raise SettingsError(
                "remask_carry=False re-predicts committed tokens of policy 'remask'; "
                "set policy='remask' or drop --no-remask-carry"
            )
        if self.compile and self.cache != "none":
            raise SettingsError(
                "compile=True needs cache='none' (a static-shape canvas); the caches change "
                "shape per block"
            )
        if self.schedule == "dream" and self.adaptive:
            raise SettingsError(
                "schedule='dream' sets fixed step counts; threshold and factor choose their own, "
                "so give one or the other"
            )
        if self.rng != "dlm":
            self._check_reference_rng()

    def _check_reference_rng(self) -> None:
        """``rng`` dream / llada / mgdm replay one reference sampler's draws; refuse what it never does."""
        name = f"rng={self.rng!r}"
        if self.rng == "mgdm":
            if self.policy != "remask" or self.remask_carry:
                raise SettingsError(
                    "rng='mgdm' replays the re-masking draws of MGDM's and DiffuSearch's "
                    "decoder, which re-predicts every position: give policy='remask' and "
                    "remask_carry=False (--no-remask-carry)"
                )
            if self.temperature > 0:
                raise SettingsError(
                    "rng='mgdm': MGDM's and DiffuSearch's decoder takes the argmax token "
                    "(temperature=0)"
                )
            return
        if self.policy == "remask":
            raise SettingsError(f"{name} replays Dream's or LLaDA's draws; policy 'remask' is MGDM's")
        if self.factor is not None:
            raise SettingsError(f"{name} has no factor rule (Fast-dLLM's later rule draws nothing)")
        if self.rng == "dream":
            if self.schedule != "dream":
                raise SettingsError(
                    "rng='dream' replays Dream's diffusion_generate, whose counts are "
                    "schedule='dream'; give schedule='dream'"
                )
            if self.block_length is not None or self.cache != "none" or self.block_start != "any":
                raise SettingsError(
                    "rng='dream' replays Dream's diffusion_generate, which has no blocks or cache; "
                    "drop block_length / cache / block_start (Fast-dLLM's Dream block sampler's "
                    "draws are not replayed: use rng='dlm' there)"
                )
            return
        if self.policy not in ("confidence", "random"):
            raise SettingsError(
                "rng='llada' replays LLaDA's remasking 'low_confidence' (policy='confidence') or "
                f"'random' (policy='random'); got policy {self.policy!r}"
            )
        if self.schedule != "linear" or self.block_start != "any":
            raise SettingsError(
                "rng='llada' replays LLaDA's per-block linear counts: schedule='linear', "
                "block_start='any'"
            )
        if self.policy_temperature > 0:
            raise SettingsError("rng='llada': LLaDA draws no positions (policy_temperature=0)")
        if (self.top_p is not None and self.top_p < 1) or self.top_k:
            raise SettingsError("rng='llada': LLaDA's Gumbel draw has no top_p / top_k filtering")
        if self.threshold is not None and self.policy == "random":
            raise SettingsError(
                "rng='llada' with a threshold replays Fast-dLLM's low_confidence rule; use "
                "policy='confidence'"
            )

    # ------------------------------------------------------------------ sources
    @classmethod
    def field_names(cls) -> tuple[str, ...]:
        return tuple(f.name for f in dataclasses.fields(cls))

    @classmethod
    def coerce(cls, name: str, value: Any) -> Any:
        """``value`` as field ``name`` takes it; strings (lm-eval model_args, JSON, YAML) parse."""
        fld = _FIELDS.get(name)
        if fld is None:
            _known({name: value}, "setting")
        return _checked(fld, value)

    @classmethod
    def resolve(
        cls,
        explicit: Mapping[str, Any] | None = None,
        *,
        request: Mapping[str, Any] | None = None,
        checkpoint: Mapping[str, Any] | None = None,
        defaults: Mapping[str, Any] | None = None,
    ) -> ResolvedSettings:
        """Settings from the layers, highest first: explicit, request, checkpoint, defaults.

        ``defaults`` are the caller's own defaults (a command's ``max_new_tokens``, a task's
        answer length); they sit just above the library's.
        """
        layers = tuple(zip(SOURCES[:-1], (explicit, request, checkpoint, defaults), strict=True))
        values: dict[str, Any] = {}
        sources = dict.fromkeys(cls.field_names(), SOURCES[-1])
        for source, layer in reversed(layers):
            for name, value in _known(dict(layer or {}), f"{source} setting").items():
                if value is not None:
                    values[name] = cls.coerce(name, value)
                    sources[name] = source
        return ResolvedSettings(cls(**values), sources)

    # ------------------------------------------------------------------ CLI
    @classmethod
    def add_arguments(
        cls, parser: argparse.ArgumentParser, *, skip: tuple[str, ...] = ()
    ) -> argparse._ArgumentGroup:
        """One ``--flag`` per field (``--max-new-tokens``, ``--no-stop-at-eos`` ...), default None.

        Read them back with ``from_arguments``; an unset flag stays None, so the checkpoint's
        and the command's defaults show through.
        """
        group = parser.add_argument_group("sampler (dlm.sampling.SamplerSettings)")
        for f in dataclasses.fields(cls):
            if f.name in skip or not f.metadata["flag"]:
                continue
            flag = "--" + f.name.replace("_", "-")
            help_text = f"{f.metadata['help']} [default: {f.default}]"
            kind = _base_type(f)
            if kind is bool:
                group.add_argument(
                    flag, dest=f.name, action=argparse.BooleanOptionalAction, default=None,
                    help=help_text,
                )
            else:
                group.add_argument(
                    flag, dest=f.name, type=_flag_type(f), default=None, choices=f.metadata["choices"],
                    help=help_text,
                )
        return group

    @classmethod
    def from_arguments(cls, args: argparse.Namespace) -> dict[str, Any]:
        """The explicit (given) sampler flags of parsed ``args``, as a settings layer."""
        return {
            name: getattr(args, name)
            for name in cls.field_names()
            if getattr(args, name, None) is not None
        }


@dataclass(frozen=True)
class ResolvedSettings:
    """Settings plus, for every field, the layer its value came from."""

    settings: SamplerSettings
    sources: dict[str, str]

    def describe(self) -> str:
        """One line per field: ``name = value   (source)``, for ``--print-settings``."""
        width = max(len(n) for n in self.sources)
        lines = []
        for name, source in self.sources.items():
            value = getattr(self.settings, name)
            lines.append(f"{name:<{width}} = {value!r:<12} ({source})")
        return "\n".join(lines)


# ---------------------------------------------------------------------- helpers
_FIELDS = {f.name: f for f in dataclasses.fields(SamplerSettings)}
_HINTS = typing.get_type_hints(SamplerSettings)


def _known(values: dict[str, Any], what: str) -> dict[str, Any]:
    unknown = sorted(set(values) - set(_FIELDS))
    if unknown:
        name = unknown[0]
        close = difflib.get_close_matches(name, list(_FIELDS), n=1, cutoff=0.5)
        hint = f"; did you mean '{close[0]}'?" if close else f"; valid: {', '.join(_FIELDS)}"
        raise SettingsError(f"unknown sampler {what} {name!r}{hint}")
    return values


def _base_type(f: dataclasses.Field) -> type:
    hint = _HINTS[f.name]
    args = [a for a in typing.get_args(hint) if a is not type(None)]
    if isinstance(hint, types.UnionType) or typing.get_origin(hint) is typing.Union:
        return args[0]
    return hint


def _flag_type(f: dataclasses.Field):
    """argparse's type for a field: its own type, and ``off`` for an optional one."""
    kind = _base_type(f)
    if kind is str or f.default is not None:
        return kind

    def parse(text: str) -> Any:
        return text if text.strip().lower() == OFF else kind(text)

    parse.__name__ = kind.__name__
    return parse


def _parse_text(kind: type, text: str) -> Any:
    lowered = text.strip().lower()
    if lowered in ("none", "null", ""):
        return None
    if kind is bool:
        if lowered in ("true", "1", "yes", "on"):
            return True
        if lowered in ("false", "0", "no", "off"):
            return False
        raise ValueError(text)
    return kind(float(text)) if kind is int and "." in text else kind(text)


def _checked(f: dataclasses.Field, value: Any) -> Any:
    """``value`` converted to the field's type and checked against its choices and range."""
    kind, name, meta = _base_type(f), f.name, f.metadata
    optional = f.default is None
    if optional and isinstance(value, str) and value.strip().lower() == OFF:
        return None  # switched off explicitly, over whatever a lower layer set
    if isinstance(value, str) and kind is not str:
        try:
            value = _parse_text(kind, value)
        except ValueError:
            raise SettingsError(
                f"sampler setting {name!r} takes a {kind.__name__}; got {value!r}"
            ) from None
    if value is None:
        if optional:
            return None
        raise SettingsError(f"sampler setting {name!r} cannot be None (default {f.default!r})")
    if kind is bool:
        if not isinstance(value, bool):
            raise SettingsError(f"sampler setting {name!r} is true or false; got {value!r}")
        return value
    if kind is int:
        if isinstance(value, bool) or not isinstance(value, int | float) or value != int(value):
            raise SettingsError(f"sampler setting {name!r} takes a whole number; got {value!r}")
        value = int(value)
    elif kind is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise SettingsError(f"sampler setting {name!r} takes a number; got {value!r}")
        value = float(value)
    elif kind is str:
        if meta["choices"] is not None and value not in meta["choices"]:
            raise SettingsError(
                f"sampler setting {name!r} must be one of: {', '.join(meta['choices'])}; got {value!r}"
            )
        return value
    low, high = meta["low"], meta["high"]
    too_low = low is not None and (value <= low if meta["low_open"] else value < low)
    too_high = high is not None and value > high
    if too_low or too_high:
        lo = "(-inf" if low is None else ("(" if meta["low_open"] else "[") + f"{low:g}"
        hi = "inf)" if high is None else f"{high:g}]"
        raise SettingsError(f"sampler setting {name!r} must be in {lo}, {hi}; got {value!r}")
    return value
