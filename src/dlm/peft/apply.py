"""Putting adapters on a ``DiffusionLM``: add, count, save, load, merge, export to stock peft.

``add_adapter(model, settings)`` freezes every base parameter and wraps each target linear
layer of ``model.backbone``: ``method: prolora`` with ``PRoLoRALinear``, ``method: lora`` with
stock ``peft`` (``peft.inject_adapter_in_model``; ``fan_in_fan_out`` for GPT-2's ``Conv1D``).

**Targets.** Only linear layers (``nn.Linear`` and GPT-2 ``Conv1D``) are candidates, named by
their dotted path inside the backbone (``transformer.h.0.attn.c_attn``,
``model.layers.3.mlp.up_proj``). A pattern selects a candidate when

* it contains no ``*``, ``?`` or ``[`` and equals the whole name or a dotted suffix of it at a
  ``.`` boundary: ``c_proj`` is every ``c_proj``, ``attn.c_proj`` only the attention ones,
  ``transformer.h.0.attn.c_attn`` exactly one;
* it contains ``*``, ``?`` or ``[``: a glob (``fnmatch``, case-sensitive) on the whole name,
  e.g. ``transformer.h.1*.mlp.*`` or ``*.self_attn.[qv]_proj``;
* it starts with ``re:``: a regular expression that must match the whole name.

A pattern that selects nothing is refused before anything changes, naming the backbone's
linear layers. The empty ``targets`` means ``default_targets(backbone)``.

**Adapter folder** (``save_adapter`` / ``load_adapter``):

* ``adapter_config.json``: ``{"format": "dlm-peft", "format_version": 1, "method", "settings"
  (PeftSettings.to_dict()), "base" (the base model's path or name, or null), "modules"
  ({backbone module name: [d_in, d_out]}), "model" (the ``DiffusionLM``'s ``DiffusionConfig``:
  mask id, shift, attention, sampler defaults)}``;
* ``adapter.safetensors``: the adapter's parameters only, keyed by their names in the
  ``DiffusionLM`` (``backbone.<module>.lora_A`` ... for PRoLoRA, peft's
  ``backbone.<module>.lora_A.default.weight`` for LoRA).

``export_peft`` writes a standard peft LoRA folder instead (``adapter_config.json`` +
``adapter_model.safetensors`` with keys ``base_model.model.<module>.lora_A.weight`` /
``lora_B.weight``, the materialised rank-r factors), which
``peft.PeftModel.from_pretrained(backbone, folder)`` loads onto the same base backbone.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fnmatch
import json
import re
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import safetensors.torch
import torch
from torch import nn

from dlm.atomic import atomic_write_bytes, atomic_write_text, check_output_dir
from dlm.errors import DlmUserError
from dlm.models import DiffusionLM

from .prolora import PRoLoRALinear, is_linear, linear_shape
from .settings import PeftSettings, PeftSettingsError, default_targets

__all__ = [
    "ADAPTER_CONFIG",
    "adapter_disabled",
    "ADAPTER_WEIGHTS",
    "PEFT_WEIGHTS",
    "AdapterError",
    "MatrixCount",
    "ParameterCounts",
    "add_adapter",
    "adapter_modules",
    "adapter_settings",
    "adapter_state_dict",
    "export_peft",
    "linear_layers",
    "load_adapter",
    "match_targets",
    "matrix_parameters",
    "merge_adapter",
    "parameter_counts",
    "read_adapter_config",
    "save_adapter",
    "trainable_parameters",
]

ADAPTER_CONFIG = "adapter_config.json"
ADAPTER_WEIGHTS = "adapter.safetensors"
PEFT_WEIGHTS = "adapter_model.safetensors"
FORMAT = "dlm-peft"
FORMAT_VERSION = 1
_SETTINGS_ATTR = "dlm_peft_settings"
_PEFT_ADAPTER = "default"
_GLOB = re.compile(r"[*?\[]")


class AdapterError(DlmUserError):
    """An adapter that cannot go on this model (or be read); the message says what to change."""


# ---------------------------------------------------------------------- finding modules
def _backbone(model: DiffusionLM) -> nn.Module:
    if not isinstance(model, DiffusionLM):
        raise AdapterError(
            f"adapters go on a dlm DiffusionLM, not a {type(model).__name__}; wrap the backbone "
            "with DiffusionLM(...) or open it with DiffusionLM.from_pretrained"
        )
    return model.backbone


def _is_peft_lora(module: nn.Module) -> bool:
    return (
        hasattr(module, "lora_A")
        and hasattr(module, "get_base_layer")
        and not isinstance(module, PRoLoRALinear)
    )


def linear_layers(backbone: nn.Module) -> dict[str, nn.Module]:
    """The backbone's plain linear layers (``nn.Linear``, ``Conv1D``) by dotted name."""
    return {name: mod for name, mod in backbone.named_modules() if name and is_linear(mod)}


def _pattern_matches(pattern: str, name: str) -> bool:
    if pattern.startswith("re:"):
        return re.fullmatch(pattern[3:], name) is not None
    if _GLOB.search(pattern):
        return fnmatch.fnmatchcase(name, pattern)
    return name == pattern or name.endswith("." + pattern)


def match_targets(backbone: nn.Module, patterns: tuple[str, ...] | list[str]) -> list[str]:
    """The names of the backbone's linear layers the patterns select (rule: module docstring),
    in module order; a pattern selecting nothing raises ``AdapterError``."""
    patterns = tuple(patterns) or default_targets(backbone)
    layers = list(linear_layers(backbone))
    for pattern in patterns:
        if pattern.startswith("re:"):
            try:
                re.compile(pattern[3:])
            except re.error as err:
                raise PeftSettingsError(
                    f"peft.targets: {pattern!r} is not a regular expression ({err})"
                ) from err
        if not any(_pattern_matches(pattern, name) for name in layers):
            leaves = sorted({name.rsplit(".", 1)[-1] for name in layers})
            raise PeftSettingsError(
                f"peft.targets: {pattern!r} matches no linear layer of this "
                f"{getattr(getattr(backbone, 'config', None), 'model_type', 'model')} backbone; "
                f"its linear layers are named {', '.join(leaves)} (a leaf name, a dotted suffix, "
                "a glob or re:<regex> on the full name)"
            )
    return [name for name in layers if any(_pattern_matches(p, name) for p in patterns)]


def adapter_modules(model: DiffusionLM) -> dict[str, nn.Module]:
    """The adapter layers on ``model`` (PRoLoRA or peft LoRA), by their name in the backbone."""
    return {
        name: mod
        for name, mod in _backbone(model).named_modules()
        if isinstance(mod, PRoLoRALinear) or _is_peft_lora(mod)
    }


@contextlib.contextmanager
def adapter_disabled(model: DiffusionLM) -> Iterator[DiffusionLM]:
    """Inside the block ``model`` computes what its frozen base does (every adapter layer, PRoLoRA
    or peft LoRA, passes its input through the base layer alone): the reference policy of RL
    fine-tuning on an adapter, at no memory cost."""
    layers = list(adapter_modules(model).values())
    for layer in layers:
        if isinstance(layer, PRoLoRALinear):
            layer.disabled = True
        else:
            layer.enable_adapters(False)
    try:
        yield model
    finally:
        for layer in layers:
            if isinstance(layer, PRoLoRALinear):
                layer.disabled = False
            else:
                layer.enable_adapters(True)


def adapter_settings(model: DiffusionLM) -> PeftSettings | None:
    """The settings of the adapter ``add_adapter`` put on ``model`` (None without one)."""
    return getattr(model, _SETTINGS_ATTR, None)


def _base_of(module: nn.Module) -> nn.Module:
    return module.base_layer if isinstance(module, PRoLoRALinear) else module.get_base_layer()


def _factors(module: nn.Module) -> tuple[torch.Tensor, torch.Tensor, float]:
    """``(A, B, scale)`` of one adapter layer: ``r x d_in``, ``d_out x r``, ``alpha / r``."""
    if isinstance(module, PRoLoRALinear):
        a, b = module.lora_factors()
        return a, b, module.scale
    return (
        module.lora_A[_PEFT_ADAPTER].weight,
        module.lora_B[_PEFT_ADAPTER].weight,
        float(module.scaling[_PEFT_ADAPTER]),
    )


def _base_name(model: DiffusionLM) -> str | None:
    """The backbone's ``name_or_path`` (where it was loaded from), or None."""
    return getattr(getattr(model.backbone, "config", None), "_name_or_path", None) or None


def _set_module(root: nn.Module, name: str, module: nn.Module) -> None:
    parent_name, _, leaf = name.rpartition(".")
    parent = root.get_submodule(parent_name) if parent_name else root
    setattr(parent, leaf, module)


# ---------------------------------------------------------------------- adding
def _check_fits(targets: dict[str, nn.Module], settings: PeftSettings) -> None:
    if settings.method != "prolora":
        return
    for name, layer in targets.items():
        d_in, d_out = linear_shape(layer)
        for rate, dim, what in ((settings.m, d_in, "m"), (settings.n, d_out, "n")):
            if rate > dim:
                raise PeftSettingsError(
                    f"peft.{what}={rate} exceeds the {dim} features of {name}; lower peft.{what} "
                    "or leave that layer out of peft.targets"
                )


def add_adapter(model: DiffusionLM, settings: PeftSettings) -> DiffusionLM:
    """Freeze every base parameter of ``model`` and wrap its target layers (in place)."""
    backbone = _backbone(model)
    if adapter_settings(model) is not None or adapter_modules(model):
        raise AdapterError(
            "this model already has an adapter; merge it (merge_adapter) or start from the base model"
        )
    names = match_targets(backbone, settings.targets)
    layers = {name: backbone.get_submodule(name) for name in names}
    _check_fits(layers, settings)
    for param in model.parameters():
        param.requires_grad_(False)
    if settings.method == "prolora":
        for name, layer in layers.items():
            _set_module(backbone, name, PRoLoRALinear(layer, settings))
    else:
        from peft import LoraConfig, inject_adapter_in_model

        config = LoraConfig(
            r=settings.r,
            lora_alpha=settings.alpha,
            lora_dropout=settings.dropout,
            target_modules=names,
            fan_in_fan_out=any(not isinstance(layer, nn.Linear) for layer in layers.values()),
            bias="none",
        )
        with warnings.catch_warnings():  # peft flips fan_in_fan_out per layer type, noisily
            warnings.simplefilter("ignore")
            inject_adapter_in_model(config, backbone, adapter_name=_PEFT_ADAPTER)
    setattr(model, _SETTINGS_ATTR, settings)
    return model


def _named_adapter_parameters(model: DiffusionLM) -> dict[str, nn.Parameter]:
    params: dict[str, nn.Parameter] = {}
    for name, module in adapter_modules(model).items():
        prefix = f"backbone.{name}."
        for pname, param in module.named_parameters():
            if pname.startswith(("lora_A", "lora_B")):
                params[prefix + pname] = param
    return params


def trainable_parameters(model: DiffusionLM) -> list[nn.Parameter]:
    """The adapter's parameters (what the optimizer should hold), in module order."""
    return list(_named_adapter_parameters(model).values())


def adapter_state_dict(model: DiffusionLM) -> dict[str, torch.Tensor]:
    """The adapter's parameters only, detached, keyed by their names in ``model``."""
    return {k: v.detach() for k, v in _named_adapter_parameters(model).items()}


# ---------------------------------------------------------------------- counting
@dataclass(frozen=True)
class MatrixCount:
    """One adapted matrix: its shape, the adapter's parameters and LoRA's r (d_in + d_out)."""

    name: str
    d_in: int
    d_out: int
    adapter: int
    lora: int


@dataclass(frozen=True)
class ParameterCounts:
    """Per-matrix and total adapter parameters against LoRA of the same rank."""

    settings: PeftSettings
    matrices: tuple[MatrixCount, ...]
    base: int

    @property
    def adapter(self) -> int:
        return sum(m.adapter for m in self.matrices)

    @property
    def lora(self) -> int:
        return sum(m.lora for m in self.matrices)

    def summary(self) -> str:
        """One line for the start of training."""
        s = self.settings
        knobs = f"r={s.r}" if s.method == "lora" else f"r={s.r} u={s.u} m={s.m} n={s.n}"
        if s.method == "prolora" and not s.rotation:
            knobs += " no-rotation"
        ratio = self.adapter / self.lora if self.lora else 0.0
        share = 100.0 * self.adapter / self.base if self.base else 0.0
        return (
            f"peft {s.method} {knobs} alpha={s.alpha:g}: {len(self.matrices)} matrices, "
            f"{self.adapter:,} trainable parameters = {ratio:.3f} x LoRA r={s.r} "
            f"({self.lora:,}), {share:.3f}% of the {self.base:,} frozen base parameters"
        )


def matrix_parameters(d_in: int, d_out: int, settings: PeftSettings) -> int:
    """u (d_in + d_out) + (r - u)(ceil(d_in/m) + ceil(d_out/n)); r (d_in + d_out) for LoRA."""
    if settings.method == "lora":
        return settings.r * (d_in + d_out)
    shared = settings.r - settings.u
    return settings.u * (d_in + d_out) + shared * (-(-d_in // settings.m) + -(-d_out // settings.n))


def parameter_counts(model: DiffusionLM, settings: PeftSettings | None = None) -> ParameterCounts:
    """Counts for the adapter on ``model`` (by the formula, per adapted matrix)."""
    settings = settings or adapter_settings(model)
    if settings is None:
        raise AdapterError("this model has no adapter; add one with add_adapter(model, settings)")
    matrices = []
    for name, module in adapter_modules(model).items():
        d_in, d_out = linear_shape(_base_of(module))
        matrices.append(
            MatrixCount(
                name,
                d_in,
                d_out,
                matrix_parameters(d_in, d_out, settings),
                settings.r * (d_in + d_out),
            )
        )
    adapter_ids = {id(p) for p in trainable_parameters(model)}
    base = sum(
        p.numel()
        for p in {id(p): p for p in model.parameters()}.values()
        if id(p) not in adapter_ids
    )
    return ParameterCounts(settings, tuple(matrices), base)


# ---------------------------------------------------------------------- save / load
def save_adapter(
    model: DiffusionLM,
    directory: str | Path,
    settings: PeftSettings | None = None,
    base: str | None = None,
) -> Path:
    """Write ``adapter.safetensors`` then ``adapter_config.json`` (each atomically) to ``directory``.

    ``base`` points at the base model the adapter goes on (default: the backbone's
    ``name_or_path``, when it has one).
    """
    settings = settings or adapter_settings(model)
    if settings is None or not adapter_modules(model):
        raise AdapterError("this model has no adapter to save; add one with add_adapter first")
    directory = check_output_dir(directory, "adapter folder")
    base = base or _base_name(model)
    tensors = {k: v.contiguous().clone() for k, v in adapter_state_dict(model).items()}
    modules = {name: list(linear_shape(_base_of(m))) for name, m in adapter_modules(model).items()}
    config = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "method": settings.method,
        "settings": settings.to_dict(),
        "base": base,
        "modules": modules,
        # the DiffusionLM's own fields (mask id, shift, attention, sampler defaults): the
        # adapted model is this config over the base's backbone
        "model": dataclasses.asdict(model.config),
    }
    directory.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(directory / ADAPTER_WEIGHTS, safetensors.torch.save(tensors))
    atomic_write_text(directory / ADAPTER_CONFIG, json.dumps(config, indent=2) + "\n")
    return directory


def read_adapter_config(directory: str | Path) -> dict[str, Any]:
    """The checked ``adapter_config.json`` of a dlm adapter folder."""
    directory = Path(directory)
    if not directory.is_dir():
        raise AdapterError(
            f"adapter folder {directory} does not exist; pass the folder save_adapter wrote"
        )
    path = directory / ADAPTER_CONFIG
    if not path.is_file() or not (directory / ADAPTER_WEIGHTS).is_file():
        raise AdapterError(
            f"{directory} is not a dlm adapter folder (it needs {ADAPTER_CONFIG} and "
            f"{ADAPTER_WEIGHTS}); pass the folder save_adapter or training wrote"
        )
    try:
        config = json.loads(path.read_text())
    except (OSError, ValueError) as err:
        raise AdapterError(
            f"{path} cannot be read as JSON ({err}); save the adapter again"
        ) from err
    if not isinstance(config, dict) or config.get("format") != FORMAT:
        raise AdapterError(
            f"{path} is not a dlm adapter config (a stock peft adapter loads with "
            "peft.PeftModel.from_pretrained, or merge it first)"
        )
    if config.get("format_version") != FORMAT_VERSION:
        raise AdapterError(
            f"{path} has format_version {config.get('format_version')!r}; this dlm reads "
            f"version {FORMAT_VERSION}: upgrade dlm or save the adapter again"
        )
    return config


def _expected_shapes(
    layers: dict[str, nn.Module], settings: PeftSettings
) -> dict[str, tuple[int, ...]]:
    shapes: dict[str, tuple[int, ...]] = {}
    r, u = settings.r, settings.u
    for name, layer in layers.items():
        d_in, d_out = linear_shape(layer)
        key = f"backbone.{name}."
        if settings.method == "lora":
            shapes[key + f"lora_A.{_PEFT_ADAPTER}.weight"] = (r, d_in)
            shapes[key + f"lora_B.{_PEFT_ADAPTER}.weight"] = (d_out, r)
        else:
            shapes[key + "lora_A"] = (r - u, -(-d_in // settings.m))
            shapes[key + "lora_B"] = (-(-d_out // settings.n), r - u)
            shapes[key + "lora_A_vec"] = (u, d_in)
            shapes[key + "lora_B_vec"] = (d_out, u)
    return shapes


def load_adapter(model: DiffusionLM, directory: str | Path) -> DiffusionLM:
    """Add the adapter saved in ``directory`` to ``model`` (in place) and load its weights.

    Everything is checked (the folder, the settings, every tensor's shape against this base)
    before the model changes.
    """
    directory = Path(directory)
    config = read_adapter_config(directory)
    settings = PeftSettings.from_dict(config.get("settings") or {})
    backbone = _backbone(model)
    if adapter_settings(model) is not None or adapter_modules(model):
        raise AdapterError("this model already has an adapter; load onto the base model")
    layers = {
        name: backbone.get_submodule(name) for name in match_targets(backbone, settings.targets)
    }
    try:
        tensors = safetensors.torch.load_file(str(directory / ADAPTER_WEIGHTS))
    except Exception as err:  # safetensors raises its own error types for a damaged file
        raise AdapterError(
            f"{directory / ADAPTER_WEIGHTS} cannot be read ({err}); save the adapter again"
        ) from err
    expected = _expected_shapes(layers, settings)
    base_hint = f" (it was trained on {config['base']})" if config.get("base") else ""
    missing = sorted(set(expected) - set(tensors))
    extra = sorted(set(tensors) - set(expected))
    if missing or extra:
        which = missing[0] if missing else extra[0]
        raise AdapterError(
            f"{directory}: the adapter's layers do not match this base model "
            f"({'missing' if missing else 'unexpected'} {which}); load it onto the base it was "
            f"trained on{base_hint}"
        )
    for key, shape in expected.items():
        if tuple(tensors[key].shape) != shape:
            raise AdapterError(
                f"{directory}: {key} has shape {tuple(tensors[key].shape)} in the adapter but "
                f"{shape} on this base model; load it onto the base it was trained on{base_hint}"
            )
    add_adapter(model, settings)
    params = _named_adapter_parameters(model)
    with torch.no_grad():
        for key, param in params.items():
            param.copy_(tensors[key])
    return model


# ---------------------------------------------------------------------- merge / export
@torch.no_grad()
def merge_adapter(model: DiffusionLM) -> DiffusionLM:
    """Replace every adapter layer by its base layer holding ``W + (alpha/r) B A`` (in place).

    The sum is taken in float32. The merged weights stay frozen (``requires_grad=False``), as
    the base was while the adapter trained.
    """
    backbone = _backbone(model)
    modules = adapter_modules(model)
    if not modules:
        raise AdapterError("this model has no adapter to merge")
    for name, module in modules.items():
        if isinstance(module, PRoLoRALinear):
            merged = module.merge()
        else:
            merged = module.get_base_layer()
            a, b, scale = _factors(module)
            delta = (b.float() @ a.float()) * scale
            if not isinstance(merged, nn.Linear):  # Conv1D keeps its weight as d_in x d_out
                delta = delta.T
            merged.weight.copy_((merged.weight.float() + delta).to(merged.weight.dtype))
        _set_module(backbone, name, merged)
    if hasattr(backbone, "peft_config"):  # left by peft.inject_adapter_in_model
        del backbone.peft_config
    if hasattr(model, _SETTINGS_ATTR):
        delattr(model, _SETTINGS_ATTR)
    return model


@torch.no_grad()
def export_peft(model: DiffusionLM, directory: str | Path, base: str | None = None) -> Path:
    """Write the adapter as a standard peft LoRA folder (rank-r ``A`` and ``B`` materialised).

    ``peft.PeftModel.from_pretrained(backbone, directory)`` on the same base backbone then
    computes what this adapter does. ``base`` (default: the backbone's ``name_or_path``) goes
    to ``base_model_name_or_path``.
    """
    from peft import LoraConfig

    settings = adapter_settings(model)
    modules = adapter_modules(model)
    if settings is None or not modules:
        raise AdapterError("this model has no adapter to export; add or load one first")
    directory = check_output_dir(directory, "export folder")
    tensors: dict[str, torch.Tensor] = {}
    conv1d = False
    for name, module in modules.items():
        a, b, _ = _factors(module)
        tensors[f"base_model.model.{name}.lora_A.weight"] = a.detach().contiguous().clone()
        tensors[f"base_model.model.{name}.lora_B.weight"] = b.detach().contiguous().clone()
        conv1d = conv1d or not isinstance(_base_of(module), nn.Linear)
    base = base or _base_name(model)
    config = LoraConfig(
        r=settings.r,
        lora_alpha=settings.alpha,
        lora_dropout=settings.dropout,
        target_modules=list(modules),
        fan_in_fan_out=conv1d,
        bias="none",
        base_model_name_or_path=base,
        inference_mode=True,
    ).to_dict()
    config = {k: sorted(v) if isinstance(v, set) else v for k, v in config.items()}
    directory.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(
        directory / PEFT_WEIGHTS, safetensors.torch.save(tensors, metadata={"format": "pt"})
    )
    atomic_write_text(directory / ADAPTER_CONFIG, json.dumps(config, indent=2, sort_keys=True))
    return directory
