"""The sandbox's child side: ``python -I -S -u bootstrap.py key=value ...`` runs this before the
user's program, in the fresh process ``dlm.sandbox.runner`` starts.

It uses the standard library only (``-S``: no site-packages; ``-I``: no environment variables,
no user site, not even this file's folder on ``sys.path``) and never imports ``dlm``. In order,
before any user code:

1. the parent-death signal (SIGKILL when the process that started it goes away);
2. namespaces, each where the kernel allows it: as root, new network, IPC, mount and PID
   namespaces; otherwise a user namespace first (mapping the caller's own uid and gid), then
   the same. The new network namespace has only a loopback device, down: no network at all;
3. with a PID namespace, a fork: the program runs as the namespace's first process, so when it
   ends the kernel kills everything it started; this process only waits and ends the same way;
4. with a mount namespace, the file system: every mount is made read-only (``mount_setattr``,
   recursively) except a bind mount of the private folder, a fresh ``/proc`` shows the
   namespace's own processes only, and a folder the unprivileged uid could not traverse on the
   way to the interpreter (``/root`` for a pyenv Python) is covered by an empty tmpfs through
   which only the interpreter's own folder is mounted back;
5. as root, the switch to the unprivileged uid and gid the parent chose (the private folder is
   theirs), and ``no_new_privs``;
6. the resource limits (RLIMIT_CPU, AS, NOFILE, FSIZE, NPROC; CORE = 0);
7. the audit guard (``make_guard``): ``sys.addaudithook`` refuses process creation, sockets,
   ctypes, sub-interpreters, object-graph walks (``gc.get_objects`` and friends), imports of
   escape hatches, and any write, rename, removal, link or mode change outside the private
   folder. A hook cannot be removed, and every name this one uses is bound when it is made,
   so a program that rebinds ``os.path`` or ``builtins`` does not change its decisions.

Which of these took effect is written, one name per line and then ``ready``, to the file
descriptor named by ``report=`` (the parent returns them as ``SandboxResult.layers``); it is
closed before the program runs, so a program cannot write there. A setup step that fails in an
unexpected way ends the process with ``EXIT_SETUP`` and a one-line message on stderr before
``ready`` is written: the program never runs unprotected by a layer that was supposed to be
on, and the parent, seeing no ``ready``, raises instead of reporting a result.

The program then runs as ``__main__`` from ``main.py`` in the private folder (its working
folder, first on ``sys.path``). An uncaught exception prints its traceback and sets the exit
code: ``EXIT_REFUSED`` for a refusal of the guard, ``EXIT_MEMORY`` for ``MemoryError``,
``EXIT_OUTPUT`` for a write past RLIMIT_FSIZE, 1 otherwise.
"""

from __future__ import annotations

import builtins
import errno
import os
import sys

__all__ = [
    "EXIT_MEMORY",
    "EXIT_OUTPUT",
    "EXIT_REFUSED",
    "EXIT_SETUP",
    "LAYERS",
    "READY",
    "SandboxRefusal",
    "make_guard",
]

EXIT_REFUSED, EXIT_MEMORY, EXIT_OUTPUT, EXIT_SETUP = 111, 112, 113, 114
#: The report's last line: every layer is in place and the program is about to run.
READY = "ready"

#: Every layer this file can report, in the order it sets them up.
LAYERS = (
    "parent_death_signal",
    "user_namespace",
    "network_namespace",
    "ipc_namespace",
    "mount_namespace",
    "pid_namespace",
    "private_proc",
    "readonly_filesystem",
    "unprivileged_uid",
    "no_new_privs",
    "rlimits",
    "audit_guard",
)

CLONE_NEWNS, CLONE_NEWIPC = 0x00020000, 0x08000000
CLONE_NEWUSER, CLONE_NEWPID, CLONE_NEWNET = 0x10000000, 0x20000000, 0x40000000
MS_NOSUID, MS_NODEV, MS_NOEXEC, MS_BIND, MS_REC, MS_PRIVATE = 2, 4, 8, 4096, 16384, 1 << 18
MOUNT_ATTR_RDONLY, AT_FDCWD, AT_RECURSIVE, SYS_MOUNT_SETATTR = 1, -100, 0x8000, 442
PR_SET_PDEATHSIG, PR_SET_NO_NEW_PRIVS = 1, 38
SIGKILL = 9
O_PATH = getattr(os, "O_PATH", 0)


class SandboxRefusal(PermissionError):
    """An operation the sandbox's audit guard does not allow."""


# ---------------------------------------------------------------------- the audit guard
#: Events refused whatever their arguments.
FORBIDDEN = frozenset(
    {
        "os.fork",
        "os.forkpty",
        "os.system",
        "os.exec",
        "os.posix_spawn",
        "os.spawn",
        "os.startfile",
        "os.killpg",
        "os.symlink",
        "subprocess.Popen",
        "pty.spawn",
        "cpython.PyInterpreterState_New",
        "gc.get_objects",
        "gc.get_referrers",
        "gc.get_referents",
        "resource.setrlimit",
        "resource.prlimit",
        "sqlite3.enable_load_extension",
        "sqlite3.load_extension",
        "webbrowser.open",
    }
)
#: Families of events refused whatever their arguments.
FORBIDDEN_PREFIXES = ("socket.", "ctypes.", "syslog.")
#: Modules that reach past the audit events (foreign calls, process creation without an
#: event, interpreters without the hook, raw memory) and ``posix``, whose copy in
#: ``sys.modules`` lost ``mkfifo`` and ``mknod`` (they raise no event).
BLOCKED_IMPORTS = frozenset(
    {
        "ctypes",
        "_ctypes",
        "_ctypes_test",
        "_posixsubprocess",
        "posix",
        "_xxsubinterpreters",
        "_xxinterpchannels",
        "_testcapi",
        "_testinternalcapi",
        "_testbuffer",
        "_testmultiphase",
        "_testsinglephase",
        "_testimportmultiple",
        "_xxtestfuzz",
        "cffi",
        "_cffi_backend",
    }
)
#: Writing events: for each path argument, (its position, the position of its dir_fd or None).
WRITES = {
    "os.chmod": ((0, 2),),
    "os.chown": ((0, 3),),
    "os.utime": ((0, 3),),
    "os.mkdir": ((0, 2),),
    "os.remove": ((0, 1),),
    "os.rmdir": ((0, 1),),
    "os.rename": ((0, 2), (1, 3)),
    "os.link": ((0, 2), (1, 3)),
    "os.truncate": ((0, None),),
    "os.setxattr": ((0, None),),
    "os.removexattr": ((0, None),),
    "shutil.copyfile": ((1, None),),
    "shutil.copymode": ((1, None),),
    "shutil.copystat": ((1, None),),
    "shutil.copytree": ((1, None),),
    "shutil.move": ((0, None), (1, None)),
    "shutil.rmtree": ((0, 1),),
    "shutil.chown": ((0, None),),
    "shutil.make_archive": ((0, None),),
    "shutil.unpack_archive": ((1, None),),
    "tempfile.mkstemp": ((0, None),),
    "tempfile.mkdtemp": ((0, None),),
}
#: Files outside the private folder a program may open for writing.
WRITABLE_DEVICES = frozenset({"/dev/null"})
#: Entries of a process's own /proc folder that lead elsewhere in the file system.
PROC_ESCAPES = frozenset({"root", "cwd", "exe", "map_files", "task"})


def make_guard(root: str, refusal: type[Exception] = SandboxRefusal):
    """The audit hook of a sandbox whose only writable folder is ``root`` (a real path).

    Everything it calls is bound here, as a closure: it looks up no global or builtin name
    at run time (the tests check its bytecode), so rebinding ``os``, ``builtins`` or a
    module's functions cannot change a decision. Any exception it raises (its own refusal or
    an error while deciding) aborts the operation: it fails closed.
    """
    str_, bytes_, int_, type_, len_, oserror = str, bytes, int, type, len, OSError
    fspath, getcwd, readlink, stat, getpid = os.fspath, os.getcwd, os.readlink, os.stat, os.getpid
    write_flags = os.O_WRONLY | os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_TRUNC
    forbidden, prefixes, blocked = FORBIDDEN, FORBIDDEN_PREFIXES, BLOCKED_IMPORTS
    writes = dict(WRITES)  # a copy only the closure holds: the module's dict can be reached
    devices, escapes = WRITABLE_DEVICES, PROC_ESCAPES
    root = "/" + root.strip("/")
    root_slash = root + "/"

    def refuse(event, detail):
        raise refusal(f"the sandbox refuses {event}: {detail}")

    def text(path):
        if type_(path) is str_:
            return path
        if type_(path) is bytes_:
            return path.decode("utf-8", "surrogateescape")
        path = fspath(path)  # an os.PathLike: whatever its __fspath__ returns now
        if type_(path) is bytes_:
            return path.decode("utf-8", "surrogateescape")
        return path

    def absolute(path, dir_fd=None):
        if not path.startswith("/"):
            if dir_fd is None or dir_fd == -1:
                base = getcwd()
            else:
                base = readlink(f"/proc/self/fd/{dir_fd:d}")
            path = base + "/" + path
        parts = []
        for part in path.split("/"):
            if part == "" or part == ".":
                continue
            if part == "..":
                if parts:
                    parts.pop()
                continue
            parts.append(part)
        return "/" + "/".join(parts)

    def inside(path):
        return path == root or path.startswith(root_slash)

    def check_write(event, path, dir_fd):
        if type_(path) is int_:  # an open descriptor: it was checked when it was opened
            return
        full = absolute(text(path), dir_fd)
        if not inside(full) and full not in devices:
            refuse(event, f"{full} is outside the sandbox's folder")

    def check_proc(event, full):
        parts = full.split("/")  # ["", "proc", who, what, ...]
        who = parts[2] if len_(parts) > 2 else ""
        own = who == "self" or who == "thread-self" or who == f"{getpid():d}"
        if who.isdigit() and not own:
            refuse(event, f"{full} belongs to another process")
        if own and len_(parts) > 3 and parts[3] in escapes:
            refuse(event, f"{full} leads outside the process")

    def check_read(event, path):
        if type_(path) is int_:
            return
        full = absolute(text(path))
        if inside(full):
            return
        if full.startswith("/proc/"):
            check_proc(event, full)
        try:
            mode = stat(full).st_mode
        except oserror:
            return  # the open itself will fail
        if mode & 0o170000 == 0o040000:  # a directory: its descriptor would be a dir_fd
            refuse(event, f"{full} is a folder outside the sandbox's folder")

    def check_open(args):
        path, flags = args[0], args[2]
        if type_(flags) is int_ and flags & write_flags:
            check_write("open", path, None)
        else:
            check_read("open", path)

    def check_chdir(args):
        path = args[0]
        if type_(path) is int_ or absolute(text(path)) != root:
            refuse("os.chdir", "the working folder stays the sandbox's folder")

    def check_kill(args):
        pid = args[0]
        if pid != 0 and pid != getpid():
            refuse("os.kill", f"process {pid} is not this program")

    def check_import(args):
        name = args[0]
        if name in blocked or name.startswith("ctypes."):
            refuse("import", f"module {name} reaches outside the sandbox")

    def check_sqlite(args):
        database = args[0]
        name = database if type_(database) is str_ else text(database)
        if name == ":memory:" or name == "":
            return
        if name.startswith("file:"):
            refuse("sqlite3.connect", "URI file names are not allowed")
        check_write("sqlite3.connect", name, None)

    def guard(event, args):
        if event == "open":
            check_open(args)
        elif event in writes:
            for position, fd_position in writes[event]:
                path = args[position]
                if path is not None:
                    check_write(event, path, None if fd_position is None else args[fd_position])
        elif event in forbidden or event.startswith(prefixes):
            refuse(event, "not allowed in the sandbox")
        elif event == "import":
            check_import(args)
        elif event == "os.chdir":
            check_chdir(args)
        elif event == "os.kill":
            check_kill(args)
        elif event == "sqlite3.connect":
            check_sqlite(args)

    return guard


# ---------------------------------------------------------------------- kernel calls
class Kernel:
    """The few libc calls Python 3.10/3.11 has no function for (unshare, mount, prctl,
    mount_setattr), through ctypes; each returns 0 or the errno."""

    def __init__(self) -> None:
        import ctypes

        self.ctypes = ctypes
        self.libc = ctypes.CDLL(None, use_errno=True)
        self.libc.syscall.restype = ctypes.c_long

    def _result(self, value: int) -> int:
        return 0 if value == 0 else (self.ctypes.get_errno() or errno.EPERM)

    def _has(self, name: str) -> bool:
        return sys.platform.startswith("linux") and hasattr(self.libc, name)

    def unshare(self, flags: int) -> int:
        if not self._has("unshare"):
            return errno.ENOSYS
        return self._result(self.libc.unshare(self.ctypes.c_int(flags)))

    def prctl(self, option: int, value: int) -> int:
        if not self._has("prctl"):
            return errno.ENOSYS
        c_ulong = self.ctypes.c_ulong
        return self._result(
            self.libc.prctl(self.ctypes.c_int(option), c_ulong(value), c_ulong(0), c_ulong(0),
                            c_ulong(0))
        )

    def mount(self, source: str | None, target: str, fstype: str | None, flags: int,
              data: str | None = None) -> int:
        def c(text):
            return None if text is None else os.fsencode(text)

        return self._result(
            self.libc.mount(c(source), c(target), c(fstype), self.ctypes.c_ulong(flags), c(data))
        )

    def mount_setattr(self, path: str, recursive: bool, set_flags: int, clear_flags: int) -> int:
        ctypes = self.ctypes
        attr = (ctypes.c_uint64 * 4)(set_flags, clear_flags, 0, 0)  # struct mount_attr
        return self._result(
            self.libc.syscall(
                ctypes.c_long(SYS_MOUNT_SETATTR),
                ctypes.c_int(AT_FDCWD),
                ctypes.c_char_p(os.fsencode(path)),
                ctypes.c_uint(AT_RECURSIVE if recursive else 0),
                ctypes.byref(attr),
                ctypes.c_size_t(ctypes.sizeof(attr)),
            )
        )


def _must(code: int, what: str) -> None:
    if code:
        raise OSError(code, f"{what}: {os.strerror(code)}")


# ---------------------------------------------------------------------- setup steps
def read_config(argv: list[str]) -> dict[str, str]:
    """``key=value`` arguments (no json: importing it would cost a few ms per program)."""
    return dict(arg.split("=", 1) for arg in argv)


def watch_parent(kernel: Kernel, parent: int, layers: list[str]) -> None:
    """SIGKILL this process when the one that started it ends (and now, if it already has)."""
    if kernel.prctl(PR_SET_PDEATHSIG, SIGKILL) == 0:
        layers.append("parent_death_signal")
    if os.getppid() != parent:
        os._exit(EXIT_SETUP)


def _write_file(path: str, text: str) -> None:
    fd = os.open(path, os.O_WRONLY)
    try:
        os.write(fd, text.encode())
    finally:
        os.close(fd)


def enter_user_namespace(kernel: Kernel, layers: list[str]) -> bool:
    """Without root: a user namespace mapping this uid and gid to themselves, whose
    capabilities let the other namespaces be made. False where the kernel refuses."""
    uid, gid = os.getuid(), os.getgid()
    if kernel.unshare(CLONE_NEWUSER):
        return False
    _write_file("/proc/self/setgroups", "deny")
    _write_file("/proc/self/uid_map", f"{uid} {uid} 1")
    _write_file("/proc/self/gid_map", f"{gid} {gid} 1")
    layers.append("user_namespace")
    return True


def enter_namespaces(kernel: Kernel, layers: list[str]) -> bool:
    """Every namespace the kernel allows; True when a user namespace was needed for them."""
    in_user_namespace = False
    if os.geteuid() != 0:
        in_user_namespace = enter_user_namespace(kernel, layers)
        if not in_user_namespace:
            return False
    for flag, name in (
        (CLONE_NEWNET, "network_namespace"),
        (CLONE_NEWIPC, "ipc_namespace"),
        (CLONE_NEWNS, "mount_namespace"),
        (CLONE_NEWPID, "pid_namespace"),
    ):
        if kernel.unshare(flag) == 0:
            layers.append(name)
    return in_user_namespace


def become_namespace_init() -> None:
    """Fork; the child (the PID namespace's first process) returns, this process waits for it
    and ends the way it ended (same exit code, or killed by the same signal)."""
    import _signal

    pid = os.fork()
    if pid == 0:
        return
    _, status = os.waitpid(pid, 0)
    if os.WIFSIGNALED(status):
        number = os.WTERMSIG(status)
        if number != SIGKILL:
            _signal.signal(number, _signal.SIG_DFL)
        os.kill(os.getpid(), number)
    os._exit(os.waitstatus_to_exitcode(status) if os.WIFEXITED(status) else 1)


def traversable_by_others(path: str) -> bool:
    """Whether a uid with no special rights can reach and list ``path``."""
    current = "/"
    for part in [p for p in path.split("/") if p]:
        current = os.path.join(current, part)
        mode = os.stat(current).st_mode
        if not mode & 0o001:
            return False
    return bool(os.stat(path).st_mode & 0o004)


def hidden_ancestor(path: str) -> str | None:
    """The highest folder above ``path`` that other uids cannot traverse."""
    current = "/"
    for part in [p for p in path.split("/") if p][:-1]:
        current = os.path.join(current, part)
        if not os.stat(current).st_mode & 0o001:
            return current
    return None


def isolate_filesystem(kernel: Kernel, config: dict[str, str], layers: list[str]) -> bool:
    """Read-only everything but the private folder, a private /proc, and the interpreter's
    folders kept reachable for the unprivileged uid. Returns whether they are (False: the uid
    switch must not happen unless they were reachable anyway)."""
    if kernel.mount(None, "/", None, MS_REC | MS_PRIVATE):
        return False  # mounts refused (a seccomp filter): no file-system layer at all
    work = config["work"]
    exposed = [p for p in config["expose"].split(os.pathsep) if p]
    handles = {path: os.open(path, O_PATH | os.O_DIRECTORY) for path in [work, *exposed]}
    wanted = sorted({hidden_ancestor(p) for p in handles} - {None}) if config["uid"] else []
    wanted = [c for c in wanted if not any(c.startswith(o + "/") for o in wanted)]
    covers = [c for c in wanted if kernel.mount(
        "tmpfs", c, "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755,size=64k") == 0]
    for path, handle in handles.items():
        if path == work or any(path.startswith(c + "/") for c in covers):
            os.makedirs(path, 0o755, exist_ok=True)
            _must(kernel.mount(f"/proc/self/fd/{handle}", path, None, MS_BIND | MS_REC),
                  f"bind {path}")
        os.close(handle)
    if "pid_namespace" in layers and kernel.mount(
        "proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC
    ) == 0:
        layers.append("private_proc")
    if kernel.mount_setattr("/", True, MOUNT_ATTR_RDONLY, 0) == 0:
        _must(kernel.mount_setattr(work, False, 0, MOUNT_ATTR_RDONLY), "make the folder writable")
        layers.append("readonly_filesystem")
    return len(covers) == len(wanted)


def drop_privileges(config: dict[str, str], layers: list[str], reachable: bool) -> None:
    """As root: become the parent's chosen uid and gid (the private folder's owner), when the
    interpreter's folders are ``reachable`` for it (or readable by anyone)."""
    if not config["uid"] or os.geteuid() != 0 or not hasattr(os, "setresuid"):
        return
    exposed = [p for p in config["expose"].split(os.pathsep) if p]
    if not reachable and not all(map(traversable_by_others, exposed)):
        return  # the interpreter's own files would be out of its reach
    uid, gid = int(config["uid"]), int(config["gid"])
    os.setgroups([])
    os.setresgid(gid, gid, gid)
    os.setresuid(uid, uid, uid)
    if os.getresuid() != (uid, uid, uid) or os.getresgid() != (gid, gid, gid):
        raise OSError(errno.EPERM, "could not switch to the sandbox's uid")
    layers.append("unprivileged_uid")


def forbid_new_privileges(kernel: Kernel, layers: list[str]) -> None:
    if kernel.prctl(PR_SET_NO_NEW_PRIVS, 1) == 0:
        layers.append("no_new_privs")


def apply_limits(config: dict[str, str], layers: list[str], waiter_shares_uid: bool) -> None:
    """The resource limits (the waiting parent, when it counts against NPROC, allowed for)."""
    import resource

    cpu = int(config["cpu"])
    processes = int(config["nproc"]) + (1 if waiter_shares_uid else 0)
    applied = 0
    limits = (
        ("RLIMIT_CORE", 0),
        ("RLIMIT_CPU", cpu),  # soft = hard: the kernel's SIGKILL at the limit
        ("RLIMIT_AS", int(config["memory"])),
        ("RLIMIT_NOFILE", int(config["nofile"])),
        ("RLIMIT_FSIZE", int(config["fsize"])),
        ("RLIMIT_NPROC", processes),
    )
    for name, value in limits:
        try:
            resource.setrlimit(getattr(resource, name), (value, value))
            applied += 1
        except (AttributeError, ValueError, OSError):
            continue  # a platform without this limit (macOS has no enforced RLIMIT_AS)
    if applied == len(limits):
        layers.append("rlimits")


def prepare_interpreter(work: str) -> None:
    """The program's view: its folder as working folder and first on sys.path, no bytecode
    written, no ctypes loaded, no event-less fifo/device creation, ``exit`` and ``quit``."""
    os.chdir(work)
    sys.dont_write_bytecode = True
    sys.path.insert(0, work)
    import posix

    for name in ("mkfifo", "mknod"):
        for module in (posix, os):
            if hasattr(module, name):
                delattr(module, name)
    for name in [m for m in sys.modules if m in ("ctypes", "_ctypes") or m.startswith("ctypes.")]:
        del sys.modules[name]
    builtins.exit = builtins.quit = sys.exit


def report(fd: int, layers: list[str]) -> None:
    """The active layers and ``ready``, to the parent's report descriptor, then closed."""
    os.write(fd, "".join(f"{name}\n" for name in [*layers, READY]).encode())
    os.close(fd)


def set_up(config: dict[str, str]) -> None:
    """Every layer, in order; the caller runs the program next."""
    import resource

    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))  # the waiting parent mirrors signals too
    layers: list[str] = []
    kernel = Kernel()
    watch_parent(kernel, int(config["parent"]), layers)
    in_user_namespace = enter_namespaces(kernel, layers)
    if "pid_namespace" in layers:
        become_namespace_init()
        kernel.prctl(PR_SET_PDEATHSIG, SIGKILL)  # now the waiting parent's death
    reachable = "mount_namespace" in layers and isolate_filesystem(kernel, config, layers)
    drop_privileges(config, layers, reachable)
    if "unprivileged_uid" in layers:
        kernel.prctl(PR_SET_PDEATHSIG, SIGKILL)  # a uid change clears it
    forbid_new_privileges(kernel, layers)
    apply_limits(config, layers, in_user_namespace and "pid_namespace" in layers)
    del kernel
    prepare_interpreter(config["work"])
    guarded = config["guard"] == "1"
    report(int(config["report"]), layers + (["audit_guard"] if guarded else []))
    if guarded:
        sys.addaudithook(make_guard(config["work"]))


# ---------------------------------------------------------------------- the program
def exit_code_for(error: BaseException) -> int:
    if isinstance(error, SandboxRefusal):
        return EXIT_REFUSED
    if isinstance(error, MemoryError):
        return EXIT_MEMORY
    if isinstance(error, OSError) and error.errno == errno.EFBIG:
        return EXIT_OUTPUT
    return 1


def run_program(path: str) -> None:
    """Run ``path`` as ``__main__``; an uncaught exception prints its traceback (without this
    file's frame) and exits with ``exit_code_for`` it."""
    module = type(sys)("__main__")
    module.__file__ = path
    module.__builtins__ = builtins
    sys.modules["__main__"] = module
    sys.argv = [path]
    with open(path, "rb") as handle:
        source = handle.read()
    try:
        exec(compile(source, path, "exec"), module.__dict__)
    except SystemExit:
        raise
    except BaseException as error:  # the program's own failure, reported as Python would
        trace = program_frames(error.__traceback__)
        sys.__excepthook__(type(error), error.with_traceback(trace), trace)
        sys.exit(exit_code_for(error))


def program_frames(trace):
    """``trace`` without this file's frames (the runner's and the guard's)."""
    kept = []
    while trace is not None:
        if trace.tb_frame.f_code.co_filename != __file__:
            kept.append(trace)
        trace = trace.tb_next
    rebuilt = None
    for entry in reversed(kept):
        rebuilt = type(entry)(rebuilt, entry.tb_frame, entry.tb_lasti, entry.tb_lineno)
    return rebuilt


def main(argv: list[str]) -> None:
    config = read_config(argv)
    try:
        set_up(config)
    except Exception as error:  # a layer that was to be on is not: never run the program
        os.write(2, f"dlm sandbox: setup failed: {type(error).__name__}: {error}\n".encode())
        os._exit(EXIT_SETUP)
    run_program(config["program"])


if __name__ == "__main__":
    main(sys.argv[1:])
