"""``dlm.atomic``: atomic file writes, output-path checks, crash-safe folder swaps and deletes.

Failures are simulated in-process: ``os.replace`` or the temporary file's ``write`` raising
part way, and ``fault_point`` raising at each point ``replace_dir`` / ``discard_dir`` pass
(where ``DLM_FAULT`` would SIGKILL a real run). After each, what is on disk is checked: an
existing file is the old complete one, a folder being replaced has one complete copy under a
known name.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

import dlm.atomic as atomic
from dlm.atomic import (
    OutputPathError,
    aside_name,
    atomic_write_bytes,
    atomic_write_text,
    check_output_path,
    discard_dir,
    fsync_tree,
    replace_dir,
    trash_name,
)
from dlm.errors import DlmUserError

OLD = "the old, complete results\n" * 100
NEW = "the new results\n" * 1000


class Killed(Exception):
    """Stands for the process dying at a fault point."""


@pytest.fixture
def stop_at(monkeypatch):
    """``stop_at(point)``: raise ``Killed`` when a swap or delete reaches ``point``;
    ``stop_at(None)``: run on without stopping."""

    def arm(point: str | None) -> None:
        def fault_point(name: str) -> None:
            if name == point:
                raise Killed(name)

        monkeypatch.setattr(atomic, "fault_point", fault_point)
        # DLM_FAULT also switches on the half-done delete before "discard.partial"; the real
        # fault_point (which would SIGKILL) is replaced above
        if point is None:
            monkeypatch.delenv(atomic.FAULT_ENV, raising=False)
        else:
            monkeypatch.setenv(atomic.FAULT_ENV, point)

    return arm


def _names(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


# ---------------------------------------------------------------------- atomic writes
def test_a_write_creates_the_file_and_its_folder_and_leaves_no_temporary(tmp_path):
    target = tmp_path / "a" / "b" / "out.json"
    atomic_write_text(target, "héllo\n")
    assert target.read_bytes() == "héllo\n".encode()
    assert _names(target.parent) == ["out.json"]
    atomic_write_bytes(target, b"\x00\x01")
    assert target.read_bytes() == b"\x00\x01" and _names(target.parent) == ["out.json"]


def test_the_old_file_survives_a_failing_rename(tmp_path, monkeypatch):
    target = tmp_path / "out.jsonl"
    target.write_text(OLD)

    def replace(src, dst):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(atomic.os, "replace", replace)
    with pytest.raises(OSError, match="No space"):
        atomic_write_text(target, NEW)
    assert target.read_text() == OLD
    assert _names(tmp_path) == ["out.jsonl"]  # the temporary file was removed


@pytest.mark.parametrize("error", [OSError("disk gone"), KeyboardInterrupt()])
def test_the_old_file_survives_a_write_that_stops_half_way(tmp_path, monkeypatch, error):
    target = tmp_path / "out.jsonl"
    target.write_text(OLD)
    real_fdopen = os.fdopen

    class HalfWriter:
        """The temporary file's handle: writes half of the data, then fails."""

        def __init__(self, handle):
            self.handle = handle

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.handle.close()

        def write(self, data):
            self.handle.write(data[: len(data) // 2])
            self.handle.flush()
            raise error

    monkeypatch.setattr(atomic.os, "fdopen", lambda fd, mode: HalfWriter(real_fdopen(fd, mode)))
    with pytest.raises(type(error)):
        atomic_write_text(target, NEW)
    assert target.read_text() == OLD
    assert _names(tmp_path) == ["out.jsonl"]


def test_a_replaced_file_keeps_its_mode_and_a_new_one_follows_the_umask(tmp_path):
    target = tmp_path / "results.json"
    target.write_text(OLD)
    target.chmod(0o640)
    atomic_write_text(target, NEW)
    assert target.read_text() == NEW
    assert stat.S_IMODE(target.stat().st_mode) == 0o640
    fresh = tmp_path / "fresh.json"
    old_mask = os.umask(0o027)
    try:
        atomic_write_text(fresh, "x")
    finally:
        os.umask(old_mask)
    assert stat.S_IMODE(fresh.stat().st_mode) == 0o640  # 0o666 & ~0o027, not mkstemp's 0o600


# ---------------------------------------------------------------------- check_output_path
def test_check_output_path_accepts_a_new_or_existing_file_and_makes_its_folder(tmp_path):
    new = tmp_path / "deep" / "er" / "out.json"
    assert check_output_path(new, "--json") == new
    assert new.parent.is_dir() and not new.exists()  # the folder is made, the file is not
    existing = tmp_path / "old.json"
    existing.write_text(OLD)
    assert check_output_path(str(existing)) == existing
    assert existing.read_text() == OLD  # checking never touches the file


def test_check_output_path_refuses_a_folder(tmp_path):
    with pytest.raises(OutputPathError, match=r"^--json .* is a folder; give a file name"):
        check_output_path(tmp_path, "--json")


def test_check_output_path_refuses_a_path_under_a_file(tmp_path):
    blocker = tmp_path / "notes.txt"
    blocker.write_text("x")
    with pytest.raises(
        OutputPathError, match=r"--output .*lies under .*notes.txt, which is a file"
    ):
        check_output_path(blocker / "sub" / "out.jsonl")
    assert blocker.read_text() == "x"


@pytest.fixture
def honest_access(monkeypatch):
    """``os.access`` as a non-root user sees it: no write bit, no writing (root ignores bits)."""
    if os.geteuid() != 0:
        return
    real = os.access

    def access(path, mode, *args, **kwargs):
        if mode & os.W_OK and not os.stat(path).st_mode & 0o222:
            return False
        return real(path, mode, *args, **kwargs)

    monkeypatch.setattr(atomic.os, "access", access)


def test_check_output_path_refuses_a_read_only_file_and_folder(tmp_path, honest_access):
    read_only = tmp_path / "locked.json"
    read_only.write_text(OLD)
    read_only.chmod(0o444)
    with pytest.raises(OutputPathError, match=r"--json .*locked.json is read-only"):
        check_output_path(read_only, "--json")
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o555)
    try:
        with pytest.raises(OutputPathError, match=r"the folder .*ro is not writable"):
            check_output_path(folder / "out.json", "--json")
    finally:
        folder.chmod(0o755)


def test_check_output_path_reports_a_folder_it_cannot_make(tmp_path, monkeypatch):
    def mkdir(self, *args, **kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(Path, "mkdir", mkdir)
    with pytest.raises(OutputPathError, match=r"cannot create its folder .*\(Permission denied\)"):
        check_output_path(tmp_path / "new" / "out.json", "--output")


def test_an_output_path_error_is_a_user_error():
    assert issubclass(OutputPathError, DlmUserError)


# ---------------------------------------------------------------------- replace_dir
def _complete(folder: Path, tag: str) -> bool:
    """A copy written by ``_make``: every one of its files there, each whole."""
    return (
        folder.is_dir()
        and _names(folder) == ["a.txt", "sub"]
        and (folder / "a.txt").read_text() == tag * 50
        and (folder / "sub" / "b.txt").read_text() == tag
    )


def _make(folder: Path, tag: str) -> Path:
    (folder / "sub").mkdir(parents=True)
    (folder / "a.txt").write_text(tag * 50)
    (folder / "sub" / "b.txt").write_text(tag)
    return folder


def test_replace_dir_moves_a_new_folder_in(tmp_path):
    final = tmp_path / "model"
    replace_dir(_make(tmp_path / ".model.tmp", "new"), final)
    assert _complete(final, "new") and _names(tmp_path) == ["model"]


def test_replace_dir_leaves_exactly_one_complete_copy(tmp_path):
    final = _make(tmp_path / "model", "old")
    replace_dir(_make(tmp_path / ".model.tmp", "new"), final)
    assert _complete(final, "new")
    assert _names(tmp_path) == ["model"]  # no aside, trash or temporary copy left


@pytest.mark.parametrize(
    "point", ["replace.aside", "replace.swapped", "discard.renamed", "discard.partial"]
)
def test_a_replace_stopped_anywhere_keeps_a_complete_copy_and_the_next_one_finishes(
    tmp_path, point, stop_at
):
    final = _make(tmp_path / "model", "old")
    tmp = _make(tmp_path / ".model.tmp", "new")
    stop_at(point)
    with pytest.raises(Killed):
        replace_dir(tmp, final)
    # one complete copy under a known name: the new one in place, or the old one set aside
    assert _complete(final, "new") or _complete(aside_name(final), "old")
    if not final.exists():
        assert _complete(tmp, "new")  # the new copy is still whole, ready to move in
    # a later replace (the rerun) cleans up whatever the stopped one left
    stop_at(None)
    again = _make(tmp_path / ".model.tmp2", "newer")
    replace_dir(again, final)
    assert _complete(final, "newer")
    leftovers = set(_names(tmp_path)) - {"model", ".model.tmp"}
    assert leftovers <= {trash_name(aside_name(final)).name}, leftovers


# ---------------------------------------------------------------------- discard_dir
def test_discard_dir_deletes_a_folder_and_ignores_a_missing_one(tmp_path):
    discard_dir(_make(tmp_path / "old", "x"))
    assert _names(tmp_path) == []
    discard_dir(tmp_path / "never-there")  # no error


def test_discard_dir_never_leaves_a_half_deleted_folder_under_its_name(tmp_path, stop_at):
    folder = _make(tmp_path / "ckpt", "x")
    stop_at("discard.partial")
    with pytest.raises(Killed):
        discard_dir(folder)
    stop_at(None)
    assert not folder.exists()  # the half-deleted copy sits only under the trash name
    trash = trash_name(folder)
    assert trash.name.startswith(".trash-") and trash.is_dir()
    assert len([p for p in trash.rglob("*") if p.is_file()]) == 1  # one of its two files gone
    discard_dir(trash)  # a trash folder is deleted in place
    assert _names(tmp_path) == []


def test_discard_dir_replaces_an_earlier_trash_leftover(tmp_path):
    _make(trash_name(tmp_path / "ckpt"), "stale")
    discard_dir(_make(tmp_path / "ckpt", "x"))
    assert _names(tmp_path) == []


def test_fsync_tree_walks_a_whole_tree(tmp_path):
    fsync_tree(_make(tmp_path / "model", "x"))  # every file and folder; no error
