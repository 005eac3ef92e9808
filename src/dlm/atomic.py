"""Writing files and folders so that nothing already on disk is lost.

Every file ``dlm`` writes for a user (results, configs, checkpoints) goes through here:

* ``check_output_path`` / ``check_output_dir`` refuse, before any work starts, an output file
  or folder that could not be written (a folder where a file goes or the reverse, a path
  under a file, a read-only parent);
* ``atomic_write_text`` / ``atomic_write_bytes`` write to a temporary name in the same folder,
  fsync it, and rename it over the target, so the target is either the old complete file or
  the new complete one, never a truncated mix;
* ``replace_dir`` swaps a finished temporary folder in for an existing one: the old one is
  renamed aside first, the new one renamed in, then the old one deleted, so a kill at any
  point leaves one complete copy under a recognisable name (the trainer's
  ``dlm.training.checkpoints.recover`` sorts leftovers out on start);
* ``discard_dir`` deletes a folder by renaming it to a ``.trash-`` name first: a half-deleted
  folder never sits under a name that looks complete.

Renames within one folder are atomic on POSIX file systems; the folder itself is fsynced
after each so the rename survives a power loss, not just a kill.

``fault_point(name)`` marks the places where a kill is most harmful. It does nothing unless the
environment variable ``DLM_FAULT=name[@n]`` names it: then the process SIGKILLs itself the n-th
time (default the first) it gets there. The kill tests and ``benchmarks/kill_soak.py`` use it to
stop a run inside a checkpoint write, a swap or a delete.
"""

from __future__ import annotations

import os
import shutil
import signal
import tempfile
from collections import Counter
from pathlib import Path

from dlm.errors import DlmUserError

__all__ = [
    "OutputPathError",
    "check_output_path",
    "check_output_dir",
    "atomic_write_text",
    "atomic_write_bytes",
    "fsync_dir",
    "fsync_tree",
    "replace_dir",
    "discard_dir",
    "aside_name",
    "trash_name",
    "fault_point",
    "FAULT_ENV",
]

ASIDE_PREFIX = ".old-"
TRASH_PREFIX = ".trash-"
FAULT_ENV = "DLM_FAULT"
_fault_hits: Counter[str] = Counter()


def fault_point(name: str) -> None:
    """SIGKILL this process here if ``DLM_FAULT`` names this point (see the module docstring)."""
    spec = os.environ.get(FAULT_ENV)
    if not spec:
        return
    point, _, nth = spec.partition("@")
    if point != name:
        return
    _fault_hits[name] += 1
    if _fault_hits[name] == int(nth or 1):
        os.kill(os.getpid(), signal.SIGKILL)


class OutputPathError(DlmUserError):
    """An output path that cannot be written; the message names the option and the fix."""


def check_output_path(path: str | Path, option: str = "--output") -> Path:
    """``path`` as a file ``dlm`` may write, checked before any work: not a folder, its
    parent a folder (made if missing) that this process can write into."""
    path = Path(path).expanduser()
    if path.is_dir():
        raise OutputPathError(f"{option} {path} is a folder; give a file name inside it")
    if path.exists() and not os.access(path, os.W_OK):
        raise OutputPathError(f"{option} {path} is read-only; make it writable or pick another")
    parent = path.parent
    blocker = next((p for p in (parent, *parent.parents) if p.exists()), None)
    if blocker is not None and not blocker.is_dir():
        raise OutputPathError(
            f"{option} {path} lies under {blocker}, which is a file, not a folder; pick another path"
        )
    try:
        parent.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise OutputPathError(
            f"{option} {path}: cannot create its folder {parent} ({err.strerror}); pick another path"
        ) from err
    if not os.access(parent, os.W_OK | os.X_OK):
        raise OutputPathError(
            f"{option} {path}: the folder {parent} is not writable; pick another path"
        )
    return path


def check_output_dir(path: str | os.PathLike, option: str) -> Path:
    """``path`` as a folder ``dlm`` may write into, checked before any work starts.

    It is a folder or does not exist yet, no path above it is a file, and the nearest folder
    that exists is writable. Nothing is created here (the command makes the folder when it
    writes), so a run refused later leaves no empty folder behind.
    """
    path = Path(path).expanduser()
    if path.exists() and not path.is_dir():
        raise OutputPathError(f"{option} {path} is a file, not a folder; give a folder path")
    existing = next((p for p in (path, *path.parents) if p.exists()), None)
    if existing is not None and not existing.is_dir():
        raise OutputPathError(
            f"{option} {path} lies under {existing}, which is a file, not a folder; pick another path"
        )
    if existing is not None and not os.access(existing, os.W_OK | os.X_OK):
        raise OutputPathError(
            f"{option} {path}: the folder {existing} is not writable; pick another path"
        )
    return path


def fsync_dir(directory: str | Path) -> None:
    """Make the entries (renames, new files) of ``directory`` durable."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    except OSError:  # some file systems cannot fsync a folder; the rename is still atomic
        pass
    finally:
        os.close(fd)


def fsync_tree(directory: str | Path) -> None:
    """fsync every file and folder under ``directory`` (before it is declared complete)."""
    for root, _, names in os.walk(directory):
        for name in names:
            fd = os.open(os.path.join(root, name), os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        fsync_dir(root)


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file renamed over it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        if path.exists():  # keep the permissions of the file being replaced
            shutil.copymode(path, tmp)
        else:
            os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)


def atomic_write_text(path: str | Path, text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` through a temporary file renamed over it."""
    atomic_write_bytes(path, text.encode("utf-8"))


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def aside_name(final: Path) -> Path:
    """Where ``replace_dir`` parks the previous copy of ``final`` while swapping."""
    return final.with_name(ASIDE_PREFIX + final.name)


def trash_name(final: Path) -> Path:
    """Where ``discard_dir`` moves a folder before deleting it."""
    return final.with_name(TRASH_PREFIX + final.name)


def replace_dir(tmp: Path, final: Path) -> None:
    """Move the finished folder ``tmp`` to ``final``, replacing any folder there.

    Order: the old ``final`` is renamed aside, ``tmp`` renamed in, the aside copy deleted.
    """
    aside = aside_name(final)
    if aside.exists():  # a leftover of an earlier interrupted swap; final or tmp is complete
        discard_dir(aside)
    if final.exists():
        final.rename(aside)
        fsync_dir(final.parent)
        fault_point("replace.aside")
    tmp.rename(final)
    fsync_dir(final.parent)
    fault_point("replace.swapped")
    if aside.exists():
        discard_dir(aside)


def discard_dir(path: Path) -> None:
    """Delete ``path``: rename it to its ``.trash-`` name, then remove that."""
    if not path.exists():
        return
    trash = trash_name(path) if not path.name.startswith(TRASH_PREFIX) else path
    if trash != path:
        if trash.exists():
            shutil.rmtree(trash)
        path.rename(trash)
        fsync_dir(path.parent)
        fault_point("discard.renamed")
    if os.environ.get(FAULT_ENV, "").startswith("discard.partial"):
        files = sorted(p for p in trash.rglob("*") if p.is_file())
        for file in files[: len(files) // 2]:  # a kill half way through a delete
            file.unlink()
        fault_point("discard.partial")
    shutil.rmtree(trash)
