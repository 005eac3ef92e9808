"""The audit guard, called directly (no process): what it refuses and what it lets through.

The end-to-end tests (``test_hostile.py``) show the same refusals in a real sandbox, where the
events come from Python itself; here every rule is checked one by one, fast.
"""

from __future__ import annotations

import dis
import os
import types

import pytest

from dlm.sandbox.bootstrap import SandboxRefusal, make_guard

ROOT = "/sandbox/run/work"
WRITE = os.O_WRONLY | os.O_CREAT | os.O_TRUNC


@pytest.fixture
def guard(monkeypatch):
    monkeypatch.chdir("/")  # relative paths resolve against the working folder: "/" here
    return make_guard(ROOT)


def _functions(function: types.FunctionType, seen: set[int] | None = None):
    """``function`` and every function its closure holds, all the way down."""
    seen = set() if seen is None else seen
    if id(function) in seen:
        return
    seen.add(id(function))
    yield function
    for cell in function.__closure__ or ():
        if isinstance(cell.cell_contents, types.FunctionType):
            yield from _functions(cell.cell_contents, seen)


def test_the_guard_looks_up_no_global_or_builtin_name_at_run_time():
    functions = list(_functions(make_guard(ROOT)))
    names = {f.__name__ for f in functions}
    assert {"guard", "check_write", "check_read", "absolute", "text", "inside"} <= names
    looked_up = {
        (f.__name__, instruction.opname, instruction.argval)
        for f in functions
        for instruction in dis.get_instructions(f)
        if instruction.opname in ("LOAD_GLOBAL", "LOAD_NAME", "IMPORT_NAME", "STORE_GLOBAL")
    }
    assert looked_up == set()


def test_the_guards_tables_are_its_own_or_immutable():
    import dlm.sandbox.bootstrap as bootstrap

    guard = make_guard(ROOT)
    saved = dict(bootstrap.WRITES)
    bootstrap.WRITES.clear()  # what a program reaching the bootstrap's globals could do
    try:
        with pytest.raises(SandboxRefusal):
            guard("os.remove", ("/etc/passwd", -1))
    finally:
        bootstrap.WRITES.update(saved)
    for table in (bootstrap.FORBIDDEN, bootstrap.BLOCKED_IMPORTS, bootstrap.FORBIDDEN_PREFIXES,
                  bootstrap.WRITABLE_DEVICES, bootstrap.PROC_ESCAPES):
        assert isinstance(table, (frozenset, tuple))


@pytest.mark.parametrize(
    ("event", "args"),
    [
        ("open", ("/tmp/x", "w", WRITE)),
        ("open", (b"/tmp/x", None, os.O_WRONLY)),
        ("open", ("../x", "a", os.O_WRONLY | os.O_APPEND)),
        ("open", (f"{ROOT}/../escape", "w", WRITE)),
        ("open", (f"{ROOT}x/prefix-trick", "w", WRITE)),
        ("os.remove", ("/etc/passwd", -1)),
        ("os.rename", (f"{ROOT}/a", "/tmp/a", -1, -1)),
        ("os.rename", ("/tmp/a", f"{ROOT}/a", -1, -1)),
        ("os.link", ("/etc/passwd", f"{ROOT}/hard", -1, -1)),
        ("os.mkdir", ("/tmp/d", 0o777, -1)),
        ("os.rmdir", ("/tmp", -1)),
        ("os.chmod", ("/tmp", 0o777, -1)),
        ("os.chown", ("/tmp", 0, 0, -1)),
        ("os.utime", ("/etc/passwd", None, None, -1)),
        ("os.truncate", ("/etc/passwd", 0)),
        ("os.setxattr", ("/tmp", "user.x", b"1", 0)),
        ("os.symlink", ("/etc", f"{ROOT}/link", -1)),
        ("shutil.copyfile", (f"{ROOT}/a", "/tmp/a")),
        ("shutil.move", ("/tmp/a", f"{ROOT}/a")),
        ("shutil.rmtree", ("/tmp/d", None)),
        ("tempfile.mkstemp", ("/tmp/tmpabc",)),
        ("os.chdir", ("/",)),
        ("os.chdir", (3,)),
        ("os.kill", (1, 9)),
        ("os.killpg", (0, 9)),
        ("os.fork", ()),
        ("os.forkpty", ()),
        ("os.system", (b"id",)),
        ("os.exec", ("/bin/sh", ["sh"], None)),
        ("os.posix_spawn", ("/bin/sh", ["sh"], {})),
        ("os.spawn", (0, "/bin/sh", ["sh"], None)),
        ("subprocess.Popen", ("sh", ["sh"], None, None)),
        ("pty.spawn", (["sh"],)),
        ("socket.__new__", (None, 2, 1, 0)),
        ("socket.connect", (None, ("127.0.0.1", 80))),
        ("socket.getaddrinfo", ("example.org", 80, 0, 0, 0)),
        ("ctypes.dlopen", ("libc.so.6",)),
        ("ctypes.call_function", (0, ())),
        ("import", ("ctypes", None, [], [], [])),
        ("import", ("ctypes.util", None, [], [], [])),
        ("import", ("_posixsubprocess", None, [], [], [])),
        ("import", ("posix", None, [], [], [])),
        ("import", ("_xxsubinterpreters", None, [], [], [])),
        ("cpython.PyInterpreterState_New", ()),
        ("gc.get_objects", (None,)),
        ("gc.get_referrers", ((),)),
        ("resource.setrlimit", (0, (1, 1))),
        ("syslog.openlog", ("x", 0, 0)),
        ("sqlite3.connect", ("/tmp/db.sqlite",)),
        ("sqlite3.connect", ("file:/tmp/db?mode=rwc",)),
        ("open", ("/proc/1234567/environ", "r", os.O_RDONLY)),
        ("open", ("/proc/self/root/etc/passwd", "r", os.O_RDONLY)),
        ("open", ("/proc/self/../1234567/environ", "r", os.O_RDONLY)),
        ("open", ("/tmp", None, os.O_RDONLY)),  # a folder descriptor would serve as a dir_fd
    ],
)
def test_the_guard_refuses(guard, event, args):
    with pytest.raises(SandboxRefusal, match=f"the sandbox refuses {event}"):
        guard(event, args)


@pytest.mark.parametrize(
    ("event", "args"),
    [
        ("open", (f"{ROOT}/out.txt", "w", WRITE)),
        ("open", (f"{ROOT}/sub/../out.txt", "w", WRITE)),
        ("open", ("/dev/null", "w", WRITE)),
        ("open", ("/etc/passwd", "r", os.O_RDONLY)),  # reading is the kernel's business
        ("open", ("/proc/self/status", "r", os.O_RDONLY)),
        ("open", ("/proc/cpuinfo", "r", os.O_RDONLY)),
        ("open", (1, "w", os.O_WRONLY)),  # an open descriptor
        ("os.remove", (f"{ROOT}/a", -1)),
        ("os.rename", (f"{ROOT}/a", f"{ROOT}/b", -1, -1)),
        ("os.mkdir", (f"{ROOT}/d", 0o777, -1)),
        ("os.chmod", (f"{ROOT}/a", 0o600, -1)),
        ("shutil.rmtree", (f"{ROOT}/d", None)),
        ("os.chdir", (ROOT,)),
        ("os.kill", (os.getpid(), 0)),
        ("import", ("json", None, [], [], [])),
        ("sqlite3.connect", (":memory:",)),
        ("compile", (b"x = 1", "<string>")),
        ("exec", (compile("x = 1", "<string>", "exec"),)),
        ("sys._getframe", (None,)),
        ("object.__setattr__", (object, "x", 1)),
    ],
)
def test_the_guard_allows(guard, event, args):
    assert guard(event, args) is None


def test_relative_paths_resolve_against_the_working_folder(monkeypatch, tmp_path):
    root = str(tmp_path.resolve())
    guard = make_guard(root)
    monkeypatch.chdir(root)
    assert guard("open", ("inside.txt", "w", WRITE)) is None
    with pytest.raises(SandboxRefusal):
        guard("open", ("../outside.txt", "w", WRITE))


def test_a_dir_fd_is_resolved_through_proc(tmp_path):
    root = tmp_path / "work"
    (root / "sub").mkdir(parents=True)
    guard = make_guard(str(root.resolve()))
    inside = os.open(root / "sub", os.O_RDONLY)
    outside = os.open(tmp_path, os.O_RDONLY)
    try:
        assert guard("os.remove", ("file", inside)) is None
        assert guard("os.remove", ("../file", inside)) is None  # still under work/
        with pytest.raises(SandboxRefusal):
            guard("os.remove", ("file", outside))
        with pytest.raises(SandboxRefusal):
            guard("os.mkdir", ("../../x", 0o777, inside))
    finally:
        os.close(inside)
        os.close(outside)


def test_a_path_object_is_checked_by_what_it_names(guard):
    class Sneaky:
        def __fspath__(self) -> str:
            return "/tmp/x"

    with pytest.raises(SandboxRefusal):
        guard("open", (Sneaky(), "w", WRITE))


def test_rebinding_module_functions_does_not_change_a_decision(guard, monkeypatch):
    import builtins
    import posixpath

    with monkeypatch.context() as patched:
        patched.setattr(posixpath, "normpath", lambda p: f"{ROOT}/x")
        patched.setattr(os, "getcwd", lambda: ROOT)
        patched.setattr(builtins, "isinstance", lambda *a: True)
        try:
            guard("open", ("escape.txt", "w", WRITE))  # the real working folder is "/"
            refused = False
        except SandboxRefusal:
            refused = True
    assert refused
