"""Run one Python program in the sandbox: ``run_python(source, stdin=..., limits=..., files=...)``.

The parent side. For every program it makes a run folder with ``tempfile`` (removed
afterwards, whatever happened) holding the private folder ``work/`` (the program's working
folder and its only writable place; as root it belongs to a uid and gid drawn for this run
only, so RLIMIT_NPROC counts this program's processes alone and no two programs can touch
each other) and, beside it and out of the program's reach, the files its stdin, stdout and
stderr go to and the bootstrap's report. It starts ``python -I -S -u bootstrap.py`` (see
``dlm.sandbox.bootstrap`` for the layers it sets up) in a session and process group of its
own, with a clean environment (``PATH``, ``HOME`` = ``TMPDIR`` = the private folder,
``LANG``) and no inherited descriptor but those, waits for it on a pidfd at most
``wall_seconds``, SIGKILLs its process group (on a timeout, and always before reaping, so
nothing it started stays), and reads back at most ``max_output_bytes`` of each stream. The
streams are unbuffered (``-u``), so what a program printed before it was killed is kept.

``isolation()`` runs one empty program and says which layers this machine gave it.
"""

from __future__ import annotations

import contextlib
import functools
import os
import secrets
import select
import shutil
import signal
import subprocess
import sys
import sysconfig
import tempfile
import threading
import time
from collections.abc import Mapping
from pathlib import Path, PurePosixPath
from typing import IO

from dlm.errors import DlmUserError

from . import bootstrap
from .limits import SandboxLimits
from .result import SandboxResult, Status

__all__ = ["SandboxInputError", "SandboxSetupError", "isolation", "run_python"]

BOOTSTRAP = str(Path(bootstrap.__file__).resolve())
PROGRAM = "main.py"
#: The range the per-run uids and gids are drawn from (far above any real account).
UID_BASE, UID_SPAN = 1_500_000_000, 500_000_000
_STATUS_OF_EXIT = {
    0: Status.OK,
    bootstrap.EXIT_REFUSED: Status.REFUSED,
    bootstrap.EXIT_MEMORY: Status.MEMORY_LIMIT,
    bootstrap.EXIT_OUTPUT: Status.OUTPUT_LIMIT,
}
_uids_in_use: set[int] = set()
_uid_lock = threading.Lock()


class SandboxInputError(DlmUserError):
    """A program, stdin or file the sandbox cannot take (the message says which)."""


class SandboxSetupError(RuntimeError):
    """The sandbox could not put a layer in place that the platform offered: a bug or a
    broken machine, never the program's doing (its stderr is in the message)."""


def run_python(
    source: str,
    *,
    stdin: str | bytes = "",
    limits: SandboxLimits | None = None,
    files: Mapping[str, str | bytes] | None = None,
) -> SandboxResult:
    """Run ``source`` as a Python program in the sandbox and return how it ended.

    ``stdin`` is its standard input; ``files`` (relative path -> text or bytes) are written
    into its private folder first (``main.py`` is the program's own name). Only the standard
    library can be imported, plus modules given in ``files``.
    """
    return _run(source, stdin=stdin, limits=limits or SandboxLimits(), files=files or {})


@functools.lru_cache(maxsize=1)
def isolation() -> dict[str, bool]:
    """Each isolation layer (``bootstrap.LAYERS``) and whether this machine gives it."""
    active = set(run_python("pass").layers)
    return {name: name in active for name in bootstrap.LAYERS}


# ---------------------------------------------------------------------- one run
def _run(
    source: str,
    *,
    stdin: str | bytes,
    limits: SandboxLimits,
    files: Mapping[str, str | bytes],
    guard: bool = True,
) -> SandboxResult:
    """``run_python`` with the audit guard optional, so the tests can show each kernel layer
    holding on its own."""
    _check_inputs(source, stdin, files)
    with _RunFolder() as folder:
        folder.fill(source, stdin, files)
        started = time.monotonic()
        process = folder.start(limits, guard)
        timed_out, wait_status, cpu = _wait(process, limits.wall_seconds)
        seconds = time.monotonic() - started
        return folder.result(limits, timed_out, wait_status, cpu, seconds)


def _check_inputs(source: object, stdin: object, files: Mapping[str, object]) -> None:
    if not isinstance(source, str):
        raise SandboxInputError(
            f"the program must be Python source text; got {type(source).__name__}"
        )
    if not isinstance(stdin, (str, bytes)):
        raise SandboxInputError(f"stdin must be text or bytes; got {type(stdin).__name__}")
    for name, content in files.items():
        _check_file_name(name)
        if not isinstance(content, (str, bytes)):
            raise SandboxInputError(
                f"file {name!r} must hold text or bytes; got {type(content).__name__}"
            )


def _check_file_name(name: object) -> None:
    if not isinstance(name, str) or not name:
        raise SandboxInputError(f"a file name must be a non-empty relative path; got {name!r}")
    path = PurePosixPath(name)
    if path.is_absolute() or ".." in path.parts or "\0" in name:
        raise SandboxInputError(
            f"file {name!r} must be a relative path inside the program's folder (no '..')"
        )
    if path.parts == (PROGRAM,):
        raise SandboxInputError(
            f"file {name!r}: {PROGRAM} is the program itself; name it otherwise"
        )


class _RunFolder:
    """The run folder: ``work/`` (the program's), its stdin, stdout, stderr and report files."""

    def __enter__(self) -> _RunFolder:
        self.uid = _draw_uid() if os.geteuid() == 0 else None
        self.path = Path(tempfile.mkdtemp(prefix="dlm-sandbox-")).resolve()
        self.work = self.path / "work"
        self.work.mkdir(mode=0o700)
        self.streams: dict[str, IO[bytes]] = {}
        if self.uid is not None:
            self.path.chmod(0o711)  # the program's uid may pass through, not list or write
        return self

    def __exit__(self, *exc: object) -> None:
        for stream in self.streams.values():
            stream.close()
        _remove_tree(self.path)
        if self.uid is not None:
            with _uid_lock:
                _uids_in_use.discard(self.uid)

    def fill(self, source: str, stdin: str | bytes, files: Mapping[str, str | bytes]) -> None:
        for name, content in {**files, PROGRAM: source}.items():
            target = self.work / name
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(content.encode() if isinstance(content, str) else content)
        if self.uid is not None:
            for entry in [self.work, *self.work.rglob("*")]:
                os.chown(entry, self.uid, self.uid, follow_symlinks=False)
        (self.path / "stdin").write_bytes(stdin.encode() if isinstance(stdin, str) else stdin)
        self.streams["stdin"] = open(self.path / "stdin", "rb")  # noqa: SIM115 (closed on exit)
        for name in ("stdout", "stderr", "report"):
            self.streams[name] = open(self.path / name, "w+b")  # noqa: SIM115

    def start(self, limits: SandboxLimits, guard: bool) -> subprocess.Popen:
        report_fd = self.streams["report"].fileno()
        config = {
            "work": str(self.work),
            "program": PROGRAM,
            "uid": "" if self.uid is None else str(self.uid),
            "gid": "" if self.uid is None else str(self.uid),
            "cpu": str(limits.cpu_seconds),
            "memory": str(limits.memory_bytes),
            "nofile": str(limits.max_open_files),
            "nproc": str(limits.max_processes),
            "fsize": str(limits.file_bytes),
            "parent": str(os.getpid()),
            "guard": "1" if guard else "0",
            "report": str(report_fd),
            "expose": os.pathsep.join(_interpreter_folders()),
        }
        return subprocess.Popen(
            [_interpreter(), "-I", "-S", "-u", BOOTSTRAP, *(f"{k}={v}" for k, v in config.items())],
            stdin=self.streams["stdin"],
            stdout=self.streams["stdout"],
            stderr=self.streams["stderr"],
            pass_fds=(report_fd,),
            close_fds=True,
            cwd=self.work,
            env=_clean_environment(self.work),
            start_new_session=True,
        )

    def result(
        self, limits: SandboxLimits, timed_out: bool, wait_status: int, cpu: float, seconds: float
    ) -> SandboxResult:
        stdout, out_size = _read_capped(self.streams["stdout"], limits.max_output_bytes)
        stderr, err_size = _read_capped(self.streams["stderr"], limits.max_output_bytes)
        layers = _read_report(self.streams["report"])
        if not timed_out and (not layers or layers[-1] != bootstrap.READY):
            raise SandboxSetupError(f"the sandbox could not start the program: {stderr.strip()}")
        status = _status(limits, timed_out, wait_status, cpu, max(out_size, err_size))
        killed = os.WIFSIGNALED(wait_status)
        return SandboxResult(
            status=status,
            returncode=None if killed else os.WEXITSTATUS(wait_status),
            signal=os.WTERMSIG(wait_status) if killed else None,
            stdout=stdout,
            stderr=stderr,
            truncated=out_size > limits.max_output_bytes or err_size > limits.max_output_bytes,
            seconds=seconds,
            cpu_seconds=cpu,
            layers=tuple(name for name in layers if name != bootstrap.READY),
        )


def _draw_uid() -> int:
    """A uid (and gid) no other run of this process holds, from a range no account uses."""
    with _uid_lock:
        while True:
            uid = UID_BASE + secrets.randbelow(UID_SPAN)
            if uid not in _uids_in_use:
                _uids_in_use.add(uid)
                return uid


def _interpreter() -> str:
    if not sys.executable:
        raise SandboxSetupError("no Python interpreter to run programs with (sys.executable)")
    return sys.executable


@functools.lru_cache(maxsize=1)
def _interpreter_folders() -> tuple[str, ...]:
    """The standard library's folders, which the program's uid must still reach."""
    paths = sysconfig.get_paths()
    folders = sorted({os.path.realpath(paths[key]) for key in ("stdlib", "platstdlib")})
    return tuple(f for f in folders if not any(f.startswith(o + os.sep) for o in folders))


def _clean_environment(work: Path) -> dict[str, str]:
    return {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": str(work), "TMPDIR": str(work),
            "LANG": "C.UTF-8"}


def _wait(process: subprocess.Popen, wall_seconds: float) -> tuple[bool, int, float]:
    """Wait at most ``wall_seconds``; kill the process group; reap. Returns (timed out, wait
    status, CPU seconds of the program and everything it waited for)."""
    exited = _wait_for_exit(process.pid, wall_seconds)
    _kill_group(process.pid)  # its leader is at worst a zombie: the group id is still its own
    _, wait_status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(wait_status)
    return not exited, wait_status, usage.ru_utime + usage.ru_stime


def _wait_for_exit(pid: int, timeout: float) -> bool:
    """Whether ``pid`` exited within ``timeout`` seconds (it is not reaped)."""
    try:
        pidfd = os.pidfd_open(pid)
    except (AttributeError, OSError):
        return _poll_for_exit(pid, timeout)
    try:
        poller = select.poll()
        poller.register(pidfd, select.POLLIN)
        return bool(poller.poll(max(1, int(timeout * 1000))))
    finally:
        os.close(pidfd)


def _poll_for_exit(pid: int, timeout: float) -> bool:
    """``_wait_for_exit`` without pidfds (Linux < 5.3): waitid(WNOWAIT) every few ms."""
    deadline = time.monotonic() + timeout
    pause = 0.001
    while True:
        if os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None:
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(pause)
        pause = min(pause * 2, 0.02)


def _kill_group(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)


def _read_capped(stream: IO[bytes], cap: int) -> tuple[str, int]:
    """The first ``cap`` bytes written to ``stream`` (decoded) and how many were written."""
    size = os.fstat(stream.fileno()).st_size
    stream.seek(0)
    return stream.read(cap).decode("utf-8", errors="replace"), size


def _read_report(stream: IO[bytes]) -> list[str]:
    stream.seek(0)
    return stream.read(4096).decode("ascii", errors="replace").split()


def _status(
    limits: SandboxLimits, timed_out: bool, wait_status: int, cpu: float, largest_output: int
) -> Status:
    if timed_out:
        return Status.TIMEOUT
    if largest_output >= limits.file_bytes:
        return Status.OUTPUT_LIMIT
    if os.WIFSIGNALED(wait_status):
        killed_at_cpu_limit = cpu >= limits.cpu_seconds - 0.05
        if os.WTERMSIG(wait_status) in (signal.SIGKILL, signal.SIGXCPU) and killed_at_cpu_limit:
            return Status.CPU_LIMIT
        return Status.ERROR
    return _STATUS_OF_EXIT.get(os.WEXITSTATUS(wait_status), Status.ERROR)


def _remove_tree(path: Path) -> None:
    """Remove the run folder even where the program took its own rights away."""

    def retry(function, failed, *_):
        os.chmod(os.path.dirname(failed), 0o700)
        if os.path.isdir(failed) and not os.path.islink(failed):
            os.chmod(failed, 0o700)
        function(failed)

    if sys.version_info >= (3, 12):
        shutil.rmtree(path, onexc=retry)
    else:
        shutil.rmtree(path, onerror=retry)
