"""Hostile programs against a real sandbox on this machine: every limit and every refusal.

Each test asserts what happened (the status, the exact count, the file that must not exist),
not only that the parent survived. Where a layer is one the kernel gives (namespaces, the
unprivileged uid), the test says so and is skipped on a machine without it; on this project's
machines and CI (Linux, root) all of them are on. ``_run(..., guard=False)`` switches the audit
hook off to show the kernel's layers holding on their own.
"""

from __future__ import annotations

import errno
import os
import socket
import textwrap
import time
import uuid
from pathlib import Path

import pytest

from dlm.sandbox import SandboxLimits, Status, isolation, run_python
from dlm.sandbox.runner import _run

SMALL = SandboxLimits(wall_seconds=3, cpu_seconds=1, memory_mb=96, max_file_mb=1)


def _needs(*layers: str) -> None:
    missing = [name for name in layers if not isolation()[name]]
    if missing:
        pytest.skip(f"this machine gives no {', '.join(missing)}")


def _unguarded(source: str, limits: SandboxLimits = SMALL):
    return _run(textwrap.dedent(source), stdin="", limits=limits, files={}, guard=False)


@pytest.fixture
def outside(tmp_path_factory) -> Path:
    """A path outside the sandbox, in the world-writable /tmp, that must never appear."""
    path = Path("/tmp") / f"dlm-sandbox-escape-{uuid.uuid4().hex}"
    yield path
    assert not path.exists(), "a sandboxed program wrote outside its folder"


# ---------------------------------------------------------------------- CPU, time, memory
def test_an_infinite_loop_is_killed_at_the_cpu_limit():
    limits = SandboxLimits(wall_seconds=5, cpu_seconds=1)
    result = run_python("while True:\n    pass\n", limits=limits)
    assert result.status is Status.CPU_LIMIT
    assert result.signal == 9 and result.returncode is None
    assert 0.95 <= result.cpu_seconds < 1.5
    assert result.seconds < 4.5  # before the wall limit, even on a loaded machine


def test_a_sleeping_program_is_killed_at_the_wall_limit():
    start = time.monotonic()
    result = run_python("import time\ntime.sleep(60)\n", limits=SandboxLimits(wall_seconds=0.3))
    assert result.status is Status.TIMEOUT
    assert result.signal == 9
    assert result.cpu_seconds < 0.2  # it used no CPU: the wall clock, not RLIMIT_CPU, ended it
    assert 0.3 <= result.seconds < 1.0 and time.monotonic() - start < 1.2


def test_what_a_killed_program_printed_is_kept():
    result = run_python("print('started')\nwhile True:\n    pass\n",
                        limits=SandboxLimits(wall_seconds=0.3))
    assert (result.status, result.stdout) == (Status.TIMEOUT, "started\n")


def test_an_infinite_loop_under_a_short_wall_limit_times_out_before_its_cpu_limit():
    limits = SandboxLimits(wall_seconds=0.4, cpu_seconds=5)
    result = run_python("while True:\n    pass\n", limits=limits)
    assert result.status is Status.TIMEOUT and result.cpu_seconds < 1


def test_a_memory_hog_gets_memory_error_at_the_address_space_limit():
    result = run_python("x = bytearray(512 * 1024 * 1024)\nprint('allocated')\n", limits=SMALL)
    assert result.status is Status.MEMORY_LIMIT
    assert result.returncode == 112 and result.stdout == ""
    assert result.stderr.rstrip().endswith("MemoryError")


def test_a_program_growing_a_list_stops_at_the_memory_limit():
    source = "chunks = []\nwhile True:\n    chunks.append(bytearray(1024 * 1024))\n"
    result = run_python(source, limits=SMALL)
    assert result.status is Status.MEMORY_LIMIT


# ---------------------------------------------------------------------- processes
def test_a_fork_bomb_is_refused():
    result = run_python("import os\nwhile True:\n    os.fork()\n", limits=SMALL)
    assert result.status is Status.REFUSED
    assert "the sandbox refuses os.fork" in result.stderr


def test_without_the_guard_a_fork_bomb_cannot_fork_at_all():
    _needs("unprivileged_uid", "pid_namespace")
    result = _unguarded(
        """
        import os
        made = 0
        for _ in range(50):
            try:
                pid = os.fork()
            except OSError as error:
                failure = error.errno
                continue
            if pid == 0:
                os._exit(0)
            made += 1
        print(made, failure == __import__("errno").EAGAIN)
        """
    )
    assert result.status is Status.OK, result.stderr
    assert result.stdout.split() == ["0", "True"]  # RLIMIT_NPROC = 1: the program itself


def test_children_beyond_max_processes_fail_and_none_outlives_the_program():
    _needs("unprivileged_uid", "pid_namespace")
    limits = SandboxLimits(wall_seconds=3, max_processes=3)
    result = _unguarded(
        """
        import os, time
        children = 0
        for _ in range(20):
            try:
                pid = os.fork()
            except OSError:
                continue
            if pid == 0:
                time.sleep(60)  # would outlive the program without the PID namespace
                os._exit(0)
            children += 1
        print(children, os.getuid())
        """,
        limits,
    )
    children, uid = result.stdout.split()
    assert result.status is Status.OK and children == "2"  # 3 processes, the program included
    time.sleep(0.1)
    leftovers = [p for p in Path("/proc").iterdir() if p.name.isdigit() and _owner(p) == int(uid)]
    assert leftovers == []


def _owner(proc_entry: Path) -> int | None:
    try:
        return proc_entry.stat().st_uid
    except FileNotFoundError:
        return None


def test_threads_count_as_processes():
    source = (
        "import threading\n"
        "try:\n    threading.Thread(target=print).start()\nexcept RuntimeError as e:\n"
        "    print('refused:', e)\n"
    )
    _needs("unprivileged_uid")
    result = run_python(source, limits=SMALL)
    assert result.status is Status.OK
    assert result.stdout.startswith("refused: can't start new thread")
    two = SandboxLimits(max_processes=2)
    assert run_python("import threading\nt = threading.Thread(target=print, args=(7,))\n"
                      "t.start()\nt.join()\n", limits=two).stdout == "7\n"


@pytest.mark.parametrize(
    ("code", "event"),
    [
        ("import os\nos.system('touch /tmp/x')", "os.system"),
        ("import subprocess\nsubprocess.run(['sh', '-c', 'id'])", "import"),
        ("import os\nos.execv('/bin/sh', ['sh', '-c', 'id'])", "os.exec"),
        ("import os\nos.posix_spawn('/bin/sh', ['sh'], {})", "os.posix_spawn"),
        ("import os\nos.spawnv(os.P_WAIT, '/bin/sh', ['sh'])", "os.fork"),
        ("import pty\npty.spawn('/bin/sh')", "pty.spawn"),
        ("import os\nos.forkpty()", "os.forkpty"),
    ],
)
def test_spawning_a_shell_is_refused(code, event):
    result = run_python(code, limits=SMALL)
    assert result.status is Status.REFUSED
    assert f"the sandbox refuses {event}" in result.stderr


# ---------------------------------------------------------------------- the file system
HOSTILE_WRITES = {
    "open_write": "open(OUTSIDE, 'w').write('x')",
    "os_open": "os.open(OUTSIDE, os.O_WRONLY | os.O_CREAT)",
    "append_parent": "open('../escape', 'a')",
    "mkdir": "os.mkdir(OUTSIDE)",
    "rename_out": "open('mine', 'w').close(); os.rename('mine', OUTSIDE)",
    "remove": "os.remove(VICTIM)",
    "rmtree": "shutil.rmtree(os.path.dirname(VICTIM))",
    "truncate": "os.truncate(VICTIM, 0)",
    "chmod": "os.chmod(VICTIM, 0o777)",
    "utime": "os.utime(VICTIM, (0, 0))",
    "copyfile": "shutil.copyfile('main.py', OUTSIDE)",
    "mkstemp": "tempfile.mkstemp(dir='/tmp')",
    "symlink": "os.symlink('/tmp', 'link')",
    "link": "os.link(VICTIM, 'hard')",
    "chdir": "os.chdir('/tmp')",
    "dir_fd": "os.open('/tmp', os.O_RDONLY)",
    "sqlite": "import sqlite3; sqlite3.connect(OUTSIDE)",
}
PROBE = """
import os, shutil, tempfile
OUTSIDE, VICTIM = {outside!r}, {victim!r}
for name, code in {operations!r}.items():
    try:
        exec(code)
    except OSError as error:
        print(name, type(error).__name__, error.errno)
    except Exception as error:
        print(name, type(error).__name__)
    else:
        print(name, "allowed")
"""


@pytest.fixture
def victim(tmp_path) -> Path:
    """A file outside the sandbox the tests try to destroy (it must survive as it was)."""
    folder = tmp_path / "victim"
    folder.mkdir()
    path = folder / "keep.txt"
    path.write_text("keep me")
    folder.chmod(0o777)  # even a world-writable folder must be safe
    path.chmod(0o666)
    return path


def _probe(outside: Path, victim: Path, guard: bool) -> dict[str, list[str]]:
    source = PROBE.format(outside=str(outside), victim=str(victim), operations=HOSTILE_WRITES)
    result = _run(source, stdin="", limits=SMALL, files={}, guard=guard)
    assert result.status is Status.OK, result.stderr
    return {line.split()[0]: line.split()[1:] for line in result.stdout.splitlines()}


def _victim_untouched(victim: Path) -> None:
    assert victim.read_text() == "keep me"
    assert victim.stat().st_mode & 0o777 == 0o666 and victim.stat().st_mtime > 1e9


def test_every_write_outside_the_folder_is_refused_by_the_guard(outside, victim):
    outcome = _probe(outside, victim, guard=True)
    assert set(outcome) == set(HOSTILE_WRITES)
    assert {name: verdict[0] for name, verdict in outcome.items()} == dict.fromkeys(
        HOSTILE_WRITES, "SandboxRefusal"
    )
    _victim_untouched(victim)


def test_without_the_guard_the_kernel_refuses_the_same_writes(outside, victim):
    _needs("readonly_filesystem", "unprivileged_uid")
    outcome = _probe(outside, victim, guard=False)
    allowed = sorted(name for name, verdict in outcome.items() if verdict == ["allowed"])
    # only what writes nothing outside the folder gets through: a link inside it, opening
    # and entering a folder
    assert allowed == ["chdir", "dir_fd", "symlink"]
    kernel_errors = {int(v[1]) for v in outcome.values() if v[0] != "allowed" and len(v) > 1}
    assert kernel_errors <= {errno.EROFS, errno.EACCES, errno.EPERM, errno.EXDEV}
    _victim_untouched(victim)


def test_mkfifo_and_mknod_are_gone():
    result = run_python("import os\nprint(hasattr(os, 'mkfifo'), hasattr(os, 'mknod'))")
    assert result.stdout == "False False\n"


# ---------------------------------------------------------------------- the environment
def test_the_parent_environment_and_its_proc_entry_are_out_of_reach(monkeypatch):
    monkeypatch.setenv("DLM_SANDBOX_TEST_SECRET", "s3cr3t-value")
    source = textwrap.dedent(
        f"""
        import os
        print(sorted(os.environ))
        for path in ("/proc/{os.getpid()}/environ", "/proc/{os.getppid()}/environ",
                     "/proc/1/environ"):
            try:
                print(path, open(path, "rb").read())
            except OSError as error:
                print(path, "unreadable", type(error).__name__)
        """
    )
    for guard in (True, False):
        result = _run(source, stdin="", limits=SMALL, files={}, guard=guard)
        assert result.status is Status.OK, result.stderr
        lines = result.stdout.splitlines()
        assert lines[0] == "['HOME', 'LANG', 'PATH', 'TMPDIR']"
        assert "s3cr3t" not in result.stdout + result.stderr
        assert all("unreadable" in line for line in lines[1:3])


def test_the_program_sees_only_its_own_processes():
    _needs("private_proc")
    result = run_python("import os\nprint(sorted(p for p in os.listdir('/proc') if p.isdigit()))")
    assert result.stdout == "['1']\n"


# ---------------------------------------------------------------------- the network
@pytest.fixture
def listener():
    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    server.setblocking(False)
    yield server
    with pytest.raises(BlockingIOError):  # nobody ever connected
        server.accept()
    server.close()


def test_opening_a_socket_is_refused(listener):
    port = listener.getsockname()[1]
    source = f"import socket\ns = socket.create_connection(('127.0.0.1', {port}), timeout=1)\n"
    result = run_python(source, limits=SMALL)
    assert result.status is Status.REFUSED
    assert "the sandbox refuses socket" in result.stderr


def test_without_the_guard_there_is_no_network_to_connect_to(listener):
    _needs("network_namespace")
    port = listener.getsockname()[1]
    result = _unguarded(
        f"""
        import socket
        try:
            socket.create_connection(('127.0.0.1', {port}), timeout=1)
            print("connected")
        except OSError as error:
            print(type(error).__name__, error.errno)
        print(sorted(n for _, n in socket.if_nameindex()))
        """
    )
    first, interfaces = result.stdout.splitlines()
    assert first.split()[1] in {str(errno.ENETUNREACH), str(errno.ECONNREFUSED)}
    assert interfaces == "['lo']"


# ---------------------------------------------------------------------- output and files
def test_huge_output_is_cut_and_stopped_at_the_file_limit():
    source = "import sys\nwhile True:\n    sys.stdout.write('x' * 65536)\n"
    limits = SandboxLimits(wall_seconds=5, max_file_mb=1, max_output_bytes=1000)
    result = run_python(source, limits=limits)
    assert result.status is Status.OUTPUT_LIMIT
    assert result.stdout == "x" * 1000 and result.truncated
    assert result.seconds < 3


def test_output_past_the_cap_is_cut_but_the_program_still_succeeds():
    limits = SandboxLimits(max_output_bytes=10)
    result = run_python("print('0123456789' * 100)", limits=limits)
    assert result.status is Status.OK
    assert result.stdout == "0123456789" and result.truncated


def test_too_many_open_files_fail_with_emfile():
    source = textwrap.dedent(
        """
        handles = []
        try:
            while True:
                handles.append(open("main.py"))
        except OSError as error:
            print(len(handles), error.errno)
        """
    )
    result = run_python(source, limits=SandboxLimits(max_open_files=16))
    opened, code = result.stdout.split()
    assert result.status is Status.OK
    assert int(code) == errno.EMFILE and 8 <= int(opened) <= 13  # 16 less stdio and the bootstrap's


def test_a_big_file_in_the_folder_stops_at_the_file_limit():
    source = "with open('big', 'wb') as f:\n    f.write(b'x' * (3 * 1024 * 1024))\n"
    result = run_python(source, limits=SandboxLimits(max_file_mb=1))
    assert result.status is Status.OUTPUT_LIMIT and result.returncode == 113
    assert "File too large" in result.stderr


def test_ctypes_and_object_graph_walks_are_refused():
    for code in ("import ctypes", "import gc\ngc.get_objects()", "import _xxsubinterpreters"):
        result = run_python(code, limits=SMALL)
        assert result.status is Status.REFUSED, code
