"""Crash-safe, resumable checkpoints.

A checkpoint ``checkpoint-<step>/`` holds accelerate's full training state (model, optimizer,
LR scheduler, every process's RNG states), the model as an ordinary ``dlm`` checkpoint under
``model/`` (so ``dlm generate`` opens it), ``trainer_state.json`` (step, data position) and the
run's ``train_config.yaml``. The final ``model/`` folder of a run is written the same way.

How a kill at any moment loses nothing:

1. everything is written under ``.tmp-<name>``, fsynced, and then ``manifest.json`` is written
   last: it lists every file with its size. A folder is *complete* only when its manifest is
   there and every listed file has its listed size, so a half-written, truncated or
   half-deleted folder is never taken for a checkpoint, whatever its name;
2. the finished folder is swapped in with ``dlm.atomic.replace_dir`` (the old copy renamed
   aside to ``.old-<name>``, the new one renamed in, the old one deleted) and old checkpoints
   are deleted with ``discard_dir`` (renamed to ``.trash-<name>`` first);
3. on start, ``recover`` looks at the leftovers of an interrupted write, swap or delete and
   keeps the newest complete copy under the real name, deleting the rest, with a one-line
   notice for each;
4. a run that starts at step S (0 for a fresh run) moves checkpoints of later steps, left by
   the run it replaces or branches from, to ``superseded-checkpoint-<step>``
   (``supersede_later``), so ``resume=latest`` never mixes two runs.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import Any

from dlm.atomic import (
    ASIDE_PREFIX,
    TRASH_PREFIX,
    atomic_write_text,
    discard_dir,
    fault_point,
    fsync_dir,
    fsync_tree,
    replace_dir,
)
from dlm.config import ConfigError
from dlm.errors import DlmUserError

__all__ = [
    "CHECKPOINT_PREFIX",
    "MANIFEST_NAME",
    "CheckpointError",
    "checkpoint_dir",
    "temporary_dir",
    "clear_temporary",
    "list_checkpoints",
    "latest_checkpoint",
    "previous_checkpoint",
    "incomplete_reason",
    "is_complete",
    "read_trainer_state",
    "write_trainer_state",
    "write_manifest",
    "finalize",
    "prune",
    "recover",
    "supersede_later",
    "notice",
]

CHECKPOINT_PREFIX = "checkpoint-"
STATE_NAME = "trainer_state.json"
MANIFEST_NAME = "manifest.json"
TMP_PREFIX = ".tmp-"
MODEL_NAME = "model"
SUPERSEDED_PREFIX = "superseded-"
_PATTERN = re.compile(rf"^{CHECKPOINT_PREFIX}(\d+)$")


class CheckpointError(DlmUserError):
    """A checkpoint that cannot be used (incomplete, truncated, unreadable); the message names
    it and the previous good one."""


def checkpoint_dir(output_dir: Path, step: int) -> Path:
    return output_dir / f"{CHECKPOINT_PREFIX}{step}"


def temporary_dir(final: Path) -> Path:
    """Where the folder ``final`` is written before it is complete."""
    return final.with_name(TMP_PREFIX + final.name)


def clear_temporary(final: Path) -> Path:
    """``final``'s temporary folder, emptied of what an earlier, interrupted write left."""
    tmp = temporary_dir(final)
    if tmp.exists():
        discard_dir(tmp)
    return tmp


# ---------------------------------------------------------------------- completeness
def write_manifest(directory: Path) -> None:
    """fsync everything under ``directory``, then write its manifest (the completeness mark)."""
    fsync_tree(directory)
    files = {
        str(p.relative_to(directory)): p.stat().st_size
        for p in sorted(directory.rglob("*"))
        if p.is_file() and p.name != MANIFEST_NAME
    }
    fault_point("save.before_manifest")
    atomic_write_text(directory / MANIFEST_NAME, json.dumps({"files": files}, indent=1) + "\n")


def incomplete_reason(directory: Path) -> str | None:
    """Why ``directory`` is not a complete folder (None when it is)."""
    manifest = directory / MANIFEST_NAME
    if not manifest.is_file():
        return f"it has no {MANIFEST_NAME} (its write did not finish)"
    try:
        files = json.loads(manifest.read_text())["files"]
    except (ValueError, KeyError, TypeError):
        return f"its {MANIFEST_NAME} is unreadable"
    for name, size in files.items():
        path = directory / name
        if not path.is_file():
            return f"{name} is missing"
        if path.stat().st_size != size:
            return f"{name} has {path.stat().st_size} bytes, not the {size} it was written with"
    return None


def is_complete(directory: Path) -> bool:
    return directory.is_dir() and incomplete_reason(directory) is None


# ---------------------------------------------------------------------- listing
def _steps(output_dir: Path) -> list[tuple[int, Path]]:
    if not output_dir.is_dir():
        return []
    found = []
    for path in output_dir.iterdir():
        match = _PATTERN.match(path.name)
        if match and path.is_dir():
            found.append((int(match.group(1)), path))
    return sorted(found)


def list_checkpoints(output_dir: Path) -> list[Path]:
    """Complete checkpoints in ``output_dir``, oldest first."""
    return [path for _, path in _steps(output_dir) if is_complete(path)]


def latest_checkpoint(output_dir: Path) -> Path | None:
    found = list_checkpoints(output_dir)
    return found[-1] if found else None


def previous_checkpoint(path: Path) -> Path | None:
    """The newest complete checkpoint of ``path``'s run older than ``path``."""
    match = _PATTERN.match(path.name)
    step = int(match.group(1)) if match else None
    older = [p for s, p in _steps(path.parent) if (step is None or s < step) and is_complete(p)]
    return older[-1] if older else None


# ---------------------------------------------------------------------- state
def write_trainer_state(directory: Path, state: dict[str, Any]) -> None:
    atomic_write_text(directory / STATE_NAME, json.dumps(state, indent=2) + "\n")


def read_trainer_state(directory: Path) -> dict[str, Any]:
    """The step and data position of a complete checkpoint; a clear error for anything else."""
    reason = incomplete_reason(directory) if directory.is_dir() else "missing"
    listed = directory.is_dir() and (directory / MANIFEST_NAME).is_file()
    if not (directory / STATE_NAME).is_file() and (reason is None or not listed):
        raise ConfigError(
            f"resume={directory} is not a training checkpoint (no {STATE_NAME}); resume=latest picks "
            "the newest checkpoint-<step> folder of output_dir"
        )
    if reason is not None:
        previous = previous_checkpoint(directory)
        raise CheckpointError(
            f"checkpoint {directory} is incomplete: {reason}; resume from the previous good one "
            + (f"(resume={previous})" if previous else "(none: start the run again)")
        )
    try:
        state = json.loads((directory / STATE_NAME).read_text())
        int(state["step"]), state["data"]
    except (ValueError, KeyError, TypeError) as err:
        raise CheckpointError(
            f"checkpoint {directory}: {STATE_NAME} is unreadable ({err}); resume from another "
            "checkpoint"
        ) from err
    return state


# ---------------------------------------------------------------------- writing
def finalize(tmp: Path, final: Path) -> None:
    """Mark the written folder ``tmp`` complete and swap it in for ``final``."""
    write_manifest(tmp)
    fault_point("save.complete")
    replace_dir(tmp, final)


def prune(output_dir: Path, keep_last: int, newest: int) -> None:
    """Delete complete checkpoints older than the ``keep_last`` newest up to step ``newest``.

    Checkpoints of later steps (left by a run resumed from an earlier step) are not counted or
    deleted: the resumed run replaces them when it gets there.
    """
    kept = [path for step, path in _steps(output_dir) if step <= newest and is_complete(path)]
    for path in kept[:-keep_last]:
        fault_point("prune")
        discard_dir(path)


def supersede_later(output_dir: Path, step: int, notice=None) -> list[Path]:
    """Move what a run starting at ``step`` would mix with out of its way.

    A run started at step 0 in a folder holding another run, or resumed from an earlier
    checkpoint than the newest, would otherwise mix its checkpoints with those of the run it
    replaces (``resume=latest`` could pick the other run's). Checkpoints of later steps (and,
    for a fresh run, the other run's ``model/``) are renamed to ``superseded-<name>``, each
    with a notice; rename one back to use it. One generation is kept: an older
    ``superseded-<name>`` is deleted. Returns the new paths.
    """
    found = [path for later, path in _steps(output_dir) if later > step]
    if step == 0 and (output_dir / MODEL_NAME).is_dir():
        found.append(output_dir / MODEL_NAME)
    moved = []
    for path in found:
        target = output_dir / f"{SUPERSEDED_PREFIX}{path.name}"
        if target.exists():
            discard_dir(target)
        path.rename(target)
        moved.append(target)
        if notice is not None:
            notice(
                f"{path.name} belongs to the run this one replaces (this one starts at step "
                f"{step}); moved to {target.name}"
            )
    if moved:
        fsync_dir(output_dir)
    return moved


def notice(message: str) -> None:
    """A one-line note to the user on stderr (what was recovered, what changed on resume)."""
    print(f"dlm: {message}", file=sys.stderr, flush=True)


_DISCARDED = (TMP_PREFIX, ASIDE_PREFIX, SUPERSEDED_PREFIX)


def _leftover(folder: str) -> tuple[str | None, str]:
    """(prefix, name) when ``folder`` is a leftover of a trainer-written ``name``
    (``checkpoint-<step>`` or ``model``), e.g. ``.trash-.tmp-checkpoint-4`` or
    ``.trash-superseded-model``; else (None, "").
    A user's own ``.tmp-data`` folder is not one."""
    for prefix in (TMP_PREFIX, ASIDE_PREFIX, TRASH_PREFIX):
        if folder.startswith(prefix):
            base = folder[len(prefix) :]
            # what gets discarded: a temporary, aside or superseded copy, or the folder itself
            while prefix == TRASH_PREFIX and base.startswith(_DISCARDED):
                base = base[len(next(p for p in _DISCARDED if base.startswith(p))) :]
            if base == MODEL_NAME or _PATTERN.match(base):
                return prefix, base
    return None, ""


def recover(output_dir: Path, notice=notice) -> None:
    """Finish or undo what an interrupted write, swap or delete left in ``output_dir``.

    Only the names the trainer writes (``checkpoint-<step>``, ``model``) are looked at. For
    each name with leftovers, the newest complete copy ends up under the real name: the
    temporary one (a finished write not yet swapped in) over the aside one (the previous copy)
    over the one in place; incomplete copies and ``.trash-`` folders are deleted.
    """
    if not output_dir.is_dir():
        return
    names = {}
    for path in sorted(output_dir.iterdir()):
        if not path.is_dir():
            continue
        prefix, name = _leftover(path.name)
        if prefix == TRASH_PREFIX:  # .trash-<name>, also of a temporary or aside copy
            discard_dir(path)
            notice(f"finished deleting {path.name[len(TRASH_PREFIX) :]} (a delete was interrupted)")
        elif prefix is not None:
            names.setdefault(name, {})[prefix] = path
    for name, leftovers in sorted(names.items()):
        final = output_dir / name
        candidates = [leftovers.get(TMP_PREFIX), leftovers.get(ASIDE_PREFIX)]
        source = next((c for c in candidates if c is not None and is_complete(c)), None)
        if is_complete(final) and source is not leftovers.get(TMP_PREFIX):
            source = None  # the folder in place is complete and nothing newer is
        if source is not None:
            if final.exists():  # incomplete, or an older copy of the same step
                discard_dir(final)
            source.rename(final)
            fsync_dir(output_dir)
            notice(f"recovered {final.name} from an interrupted save ({source.name})")
        for leftover in candidates:
            if leftover is not None and leftover.exists():
                discard_dir(leftover)
                notice(f"removed {leftover.name}, left by an interrupted save")
