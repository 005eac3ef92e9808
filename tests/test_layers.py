"""The import order the README's "Architecture" section draws holds in the code.

Every module under ``src/dlm`` is parsed with ``ast`` (nothing is imported) and each of its
imports of another ``dlm`` package is checked against the layers, top to bottom:

    cli > serve > demo > evaluation > checkpoints > training > rl > rewards > peft > tasks > chess > sampling > models > data > diffusion > sandbox

A module may import its own package and any package drawn below it, never one drawn above.
What counts as an import:

* every ``import`` and ``from ... import`` anywhere in the module, including those inside
  functions and methods: a lazy import runs as soon as the function does, so it binds the
  layers just as a top-level one does;
* relative imports, resolved against the module's package;
* NOT imports under ``if TYPE_CHECKING:``; they never run, they only name types for a type
  checker, so a lower layer may annotate with a higher layer's class that way.

Three small modules sit outside the layers because every layer needs them: ``dlm.errors`` (the
``DlmUserError`` family, no imports), ``dlm.config`` (the typed YAML/override loader) and
``dlm.atomic`` (atomic writes, output-path checks, crash-safe folder swaps). Any
module may import them; they may import nothing else of ``dlm`` but each other. The package
root ``dlm/__init__.py`` is the public facade (``dlm.load_model``) and sits on top.

The test also rejects importing a private (``_``-prefixed) name from another package.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "dlm"

#: Top to bottom, as the README draws them.
LAYERS = (
    "cli",
    "serve",
    "demo",
    "evaluation",
    "checkpoints",
    "training",
    "rl",
    "rewards",
    "peft",
    "tasks",
    "chess",
    "sampling",
    "models",
    "data",
    "diffusion",
    "sandbox",
)
#: Modules any layer may import; they import only each other.
SHARED = ("errors", "config", "atomic")
ROOT = "__init__"


def _modules() -> list[Path]:
    return sorted(SRC.rglob("*.py"))


def _module_name(path: Path) -> list[str]:
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    return ["dlm", *parts]


def _package_of(path: Path) -> str:
    """The layer (top-level subpackage or module of ``dlm``) a file belongs to."""
    first = path.relative_to(SRC).parts[0]
    return first.removesuffix(".py")


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _runtime_nodes(tree: ast.AST) -> Iterator[ast.AST]:
    """Every node, skipping the bodies of ``if TYPE_CHECKING:`` (their ``else`` runs)."""
    stack = [tree]
    while stack:
        node = stack.pop()
        yield node
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            stack.extend(node.orelse)
            continue
        stack.extend(ast.iter_child_nodes(node))


def imports(path: Path) -> Iterator[tuple[int, str, list[str]]]:
    """``(line, absolute module, imported names)`` of every runtime import in ``path``."""
    name = _module_name(path)
    package = name if path.name == "__init__.py" else name[:-1]
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    for node in _runtime_nodes(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name, []
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - (node.level - 1)]
                module = ".".join([*base, *([node.module] if node.module else [])])
            else:
                module = node.module or ""
            yield node.lineno, module, [alias.name for alias in node.names]


def _target(module: str) -> str | None:
    parts = module.split(".")
    if parts[0] != "dlm" or len(parts) < 2:
        return None
    return parts[1]


def _allowed(source: str, target: str) -> bool:
    if target == source or target in SHARED:
        return True
    if source in SHARED:
        return False  # errors and config import only each other
    if source == ROOT:
        return True
    if source not in LAYERS or target not in LAYERS:
        return False  # a new package must be drawn in the README and added here
    return LAYERS.index(target) > LAYERS.index(source)


def _violations() -> list[str]:
    found = []
    for path in _modules():
        source = _package_of(path)
        rel = path.relative_to(SRC.parent)
        for line, module, _ in imports(path):
            target = _target(module)
            if target is not None and not _allowed(source, target):
                found.append(f"{rel}:{line} ({source}) imports {module} ({target})")
    return found


def test_every_package_is_drawn():
    packages = {_package_of(p) for p in _modules()}
    assert packages - {ROOT} <= set(LAYERS) | set(SHARED), "draw the new package in the README"


def test_no_module_imports_a_layer_drawn_above_it():
    assert _violations() == []


def test_no_module_imports_a_private_name_of_another_package():
    found = []
    for path in _modules():
        source = _package_of(path)
        for line, module, names in imports(path):
            target = _target(module)
            private = [n for n in names if n.startswith("_") and not n.startswith("__")]
            private += [p for p in module.split(".") if p.startswith("_") and p != "__init__"]
            if target is not None and target != source and private:
                found.append(f"{path.relative_to(SRC.parent)}:{line} imports {module}:{private}")
    assert found == []


def test_the_readme_draws_the_same_order():
    text = (SRC.parents[1] / "README.md").read_text()
    block = text.split("## Architecture", 1)[1].split("```", 2)[1]
    drawn = [line.split()[0].rstrip("/").removesuffix(".py") for line in block.splitlines() if line]
    assert tuple(drawn) == LAYERS


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        ("from dlm.sampling import generate\n", ["dlm.sampling"]),
        ("def f():\n    from dlm.checkpoints import load_model\n", ["dlm.checkpoints"]),
        ("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from dlm.cli import x\n", []),
        ("import typing\nif typing.TYPE_CHECKING:\n    import dlm.cli\nelse:\n    import dlm.data\n", ["dlm.data"]),
        ("from ..sampling import stream\n", ["dlm.sampling"]),
        ("from . import attention\n", ["dlm.models"]),
    ],
)
def test_the_reader_sees_lazy_and_relative_imports_and_skips_type_checking(
    tmp_path, monkeypatch, code, expected
):
    module = tmp_path / "dlm" / "models" / "probe.py"
    module.parent.mkdir(parents=True)
    module.write_text(code)
    monkeypatch.setattr(f"{__name__}.SRC", tmp_path / "dlm")
    got = [m for _, m, _ in imports(module) if m.startswith("dlm")]
    assert got == expected
