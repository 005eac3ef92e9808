"""Atomic, resumable checkpoints.

A checkpoint ``checkpoint-<step>/`` holds accelerate's full training state (model, optimizer,
LR scheduler, every process's RNG states), the model as an ordinary ``dlm`` checkpoint under
``model/`` (so ``dlm generate`` opens it), and ``trainer_state.json`` (step, data position).
It is written under a temporary name and renamed when complete, so a crash never leaves a
half-written checkpoint behind the name; only the newest ``keep_last`` are kept.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from typing import Any

from dlm.config import ConfigError

__all__ = [
    "CHECKPOINT_PREFIX",
    "checkpoint_dir",
    "list_checkpoints",
    "latest_checkpoint",
    "read_trainer_state",
    "write_trainer_state",
    "finalize",
    "prune",
]

CHECKPOINT_PREFIX = "checkpoint-"
STATE_NAME = "trainer_state.json"
_PATTERN = re.compile(rf"^{CHECKPOINT_PREFIX}(\d+)$")


def checkpoint_dir(output_dir: Path, step: int) -> Path:
    return output_dir / f"{CHECKPOINT_PREFIX}{step}"


def temporary_dir(output_dir: Path, step: int) -> Path:
    return output_dir / f".tmp-{CHECKPOINT_PREFIX}{step}"


def list_checkpoints(output_dir: Path) -> list[Path]:
    """Complete checkpoints in ``output_dir``, oldest first."""
    if not output_dir.is_dir():
        return []
    found = []
    for path in output_dir.iterdir():
        match = _PATTERN.match(path.name)
        if match and (path / STATE_NAME).is_file():
            found.append((int(match.group(1)), path))
    return [p for _, p in sorted(found)]


def latest_checkpoint(output_dir: Path) -> Path | None:
    found = list_checkpoints(output_dir)
    return found[-1] if found else None


def write_trainer_state(directory: Path, state: dict[str, Any]) -> None:
    (directory / STATE_NAME).write_text(json.dumps(state, indent=2) + "\n")


def read_trainer_state(directory: Path) -> dict[str, Any]:
    path = directory / STATE_NAME
    if not path.is_file():
        raise ConfigError(
            f"resume={directory} is not a training checkpoint (no {STATE_NAME}); resume=latest picks "
            "the newest checkpoint-<step> folder of output_dir"
        )
    return json.loads(path.read_text())


def finalize(tmp: Path, final: Path) -> None:
    """Move a completed temporary directory into place."""
    if final.exists():
        shutil.rmtree(final)
    tmp.replace(final)


def prune(output_dir: Path, keep_last: int) -> None:
    """Delete all but the newest ``keep_last`` checkpoints."""
    for path in list_checkpoints(output_dir)[:-keep_last]:
        shutil.rmtree(path, ignore_errors=True)
