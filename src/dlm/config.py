"""Typed dataclass configuration filled from YAML recipes and dotted ``key=value`` overrides.

``load_config(Cls, path, overrides)`` reads a YAML file into nested dataclasses, applies
overrides such as ``optim.lr=3e-4`` (values parsed as YAML, so numbers, booleans, lists and
null work), lays a recipe over the one its ``base:`` key names, checks every value against the field's type, and rejects an unknown key with a
message that names the closest valid one.
"""

from __future__ import annotations

import dataclasses
import difflib
import re
import types
import typing
from pathlib import Path
from typing import Any, TypeVar

import yaml

from dlm.errors import DlmUserError

__all__ = [
    "ConfigError",
    "from_dict",
    "to_dict",
    "load_config",
    "apply_overrides",
    "parse_override",
]

T = TypeVar("T")
_FLOAT = re.compile(r"[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?")


class ConfigError(DlmUserError):
    """A configuration a user wrote cannot be used; the message says what to change."""


def _closest(name: str, options: list[str]) -> str:
    match = difflib.get_close_matches(name, options, n=1, cutoff=0.4)
    return f"; did you mean '{match[0]}'?" if match else ""


def _field_types(cls: type) -> dict[str, Any]:
    hints = typing.get_type_hints(cls)
    return {f.name: hints[f.name] for f in dataclasses.fields(cls)}


def _coerce(value: Any, annotation: Any, where: str) -> Any:
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if annotation is Any:
        return value
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _coerce(value, arg, where)
            except ConfigError as err:
                errors.append(str(err))
        raise ConfigError(errors[0] if errors else f"{where}: invalid value {value!r}")
    if origin is typing.Literal:
        if isinstance(value, bool) and ("no" if not value else "yes") in args:
            value = "no" if not value else "yes"  # YAML 1.1 reads a bare no/yes as a boolean
        if value not in args:
            raise ConfigError(
                f"{where} must be one of {', '.join(map(repr, args))}; got {value!r}{_closest(str(value), [str(a) for a in args])}"
            )
        return value
    if dataclasses.is_dataclass(annotation):
        if isinstance(value, annotation):
            return value
        if not isinstance(value, dict):
            raise ConfigError(f"{where} must be a mapping of its fields; got {value!r}")
        return from_dict(annotation, value, prefix=where)
    if origin in (list, tuple):
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{where} must be a list; got {value!r}")
        item = args[0] if args else Any
        items = [_coerce(v, item, f"{where}[{i}]") for i, v in enumerate(value)]
        return tuple(items) if origin is tuple else items
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{where} must be a mapping; got {value!r}")
        return dict(value)
    if annotation is bool:
        if isinstance(value, bool):
            return value
        raise ConfigError(f"{where} must be true or false; got {value!r}")
    if annotation is int:
        if isinstance(value, bool) or not isinstance(value, int):
            if isinstance(value, float) and value.is_integer():
                return int(value)
            raise ConfigError(f"{where} must be an integer; got {value!r}")
        return value
    if annotation is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{where} must be a number; got {value!r}")
        return float(value)
    if annotation is str:
        if not isinstance(value, str):
            raise ConfigError(f"{where} must be a string; got {value!r}")
        return value
    return value


def from_dict(cls: type[T], data: dict[str, Any], prefix: str = "") -> T:
    """Build dataclass ``cls`` from a (nested) mapping, rejecting unknown keys."""
    types_ = _field_types(cls)
    kwargs = {}
    for key, value in data.items():
        where = f"{prefix}.{key}" if prefix else key
        if key not in types_:
            options = [f"{prefix}.{k}" if prefix else k for k in types_]
            raise ConfigError(f"unknown config key '{where}'{_closest(where, options)}")
        kwargs[key] = _coerce(value, types_[key], where)
    try:
        return cls(**kwargs)
    except ConfigError:
        raise  # a check of the class itself; its message already names the key
    except (TypeError, ValueError) as err:
        raise ConfigError(f"{prefix or cls.__name__}: {err}") from err


def to_dict(obj: Any) -> Any:
    """A plain nested dict (YAML-ready) of a dataclass instance."""
    if dataclasses.is_dataclass(obj):
        return {f.name: to_dict(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, (list, tuple)):
        return [to_dict(v) for v in obj]
    if isinstance(obj, dict):
        return {k: to_dict(v) for k, v in obj.items()}
    return obj


def parse_override(text: str) -> tuple[list[str], Any]:
    """``'optim.lr=3e-4'`` -> (['optim', 'lr'], 0.0003)."""
    if "=" not in text:
        raise ConfigError(f"override {text!r} must look like key=value, e.g. optim.lr=3e-4")
    key, raw = text.split("=", 1)
    key = key.strip()
    if not key:
        raise ConfigError(f"override {text!r} has no key before '='")
    value = yaml.safe_load(raw) if raw.strip() else ""
    if isinstance(value, str) and _FLOAT.fullmatch(value.strip()):
        value = float(value)  # YAML 1.1 reads 3e-4 (no dot) as a string
    return key.split("."), value


def apply_overrides(data: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Set dotted keys in a nested mapping (validation happens in ``from_dict``)."""
    for text in overrides:
        path, value = parse_override(text)
        node = data
        for part in path[:-1]:
            child = node.get(part)
            if child is None:
                child = node[part] = {}
            if not isinstance(child, dict):
                raise ConfigError(f"override {text!r}: '{part}' is a value, not a section")
            node = child
        node[path[-1]] = value
    return data


def _merge(base: dict[str, Any], top: dict[str, Any]) -> dict[str, Any]:
    """``top`` over ``base``, section by section (nested mappings merge, values replace)."""
    out = dict(base)
    for key, value in top.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


def _read_recipe(path: Path, seen: tuple[Path, ...] = ()) -> dict[str, Any]:
    """A recipe's mapping, with its ``base:`` recipe (a path relative to it) merged under it."""
    if not path.is_file():
        raise ConfigError(
            f"recipe {path} does not exist; give the path of a YAML file, e.g. recipes/sudoku/diffusion.yaml"
        )
    if path.resolve() in seen:
        chain = " -> ".join(str(p) for p in (*seen, path.resolve()))
        raise ConfigError(f"recipes name each other as base in a cycle: {chain}")
    try:
        loaded = yaml.safe_load(path.read_text())
    except yaml.YAMLError as err:
        raise ConfigError(f"recipe {path} is not valid YAML: {err}") from err
    if loaded is None:
        loaded = {}
    if not isinstance(loaded, dict):
        raise ConfigError(f"recipe {path} must be a mapping of sections at the top level")
    base = loaded.pop("base", None)
    if base is None:
        return loaded
    if not isinstance(base, str):
        raise ConfigError(f"recipe {path}: base must be the path of another recipe; got {base!r}")
    parent = _read_recipe(path.parent / base, (*seen, path.resolve()))
    return _merge(parent, loaded)


def load_config(
    cls: type[T], path: str | Path | None = None, overrides: list[str] | None = None
) -> T:
    """Read a YAML recipe (or start from defaults), apply overrides, build ``cls``.

    A recipe may start from another: ``base: diffusion.yaml`` (relative to the recipe) loads
    that one first and lays this recipe's keys over it, section by section.
    """
    data: dict[str, Any] = _read_recipe(Path(path)) if path is not None else {}
    data = apply_overrides(data, list(overrides or []))
    return from_dict(cls, data)
