"""Model-written Python in a separate, limited, network-less process; a pool of them.

    from dlm.sandbox import SandboxLimits, SandboxPool, run_python

    result = run_python("print(sum(range(10)))", limits=SandboxLimits(wall_seconds=2))
    result.status, result.stdout          # (Status.OK, "45\\n")
    with SandboxPool(workers=4) as pool:
        results = pool.map(programs)      # in the order given

Every program runs in a fresh ``python -I -S`` (standard library only) in its own session and
process group, with a clean environment, in a private temporary folder that is its working
folder and its only writable place, and that is removed afterwards. Before the program's first
line, the bootstrap (``dlm.sandbox.bootstrap``) puts these layers in place, each where the
platform allows it (``isolation()`` says which this machine gives; every result lists its own
in ``layers``):

* resource limits (``SandboxLimits``): CPU seconds, address space, open files, processes and
  threads, the size of any file written (stdout and stderr included; the parent reads back at
  most ``max_output_bytes`` of each, so a flood of output fills neither memory nor disk), no
  core files; and the wall clock, enforced by the parent, which SIGKILLs the process group;
* new network, IPC, mount and PID namespaces (as root; otherwise inside a user namespace,
  where the kernel allows one): no network device but a loopback that is down, the program as
  its PID namespace's first process (when it ends, the kernel kills all it started), a
  ``/proc`` that shows only those processes, and the whole file system read-only except the
  private folder;
* as root, an unprivileged uid and gid drawn for this run alone (the owner of the private
  folder), so RLIMIT_NPROC counts this program's processes only, the rest of the file system
  obeys ordinary permissions, and no two programs can signal or read each other; plus
  ``no_new_privs`` and a parent-death signal;
* an audit hook (``sys.addaudithook``, which code cannot remove) refusing sockets, process
  creation, ctypes, sub-interpreters, ``gc`` object-graph walks, imports of escape hatches,
  reading other processes' ``/proc`` entries, and writes, renames, removals, links and mode
  changes outside the private folder.

What it does NOT protect against: kernel exploits and anything else that defeats the kernel's
own isolation; side channels (timing, cache, power); reading files the program's uid may read
(world-readable files everywhere; as a non-root caller without user namespaces, everything the
caller can read); competition for CPU, memory bandwidth and disk I/O with the rest of the
machine (limits bound each program, not the machine: ``workers`` x ``memory_mb`` must fit);
filling the private folder with many small files (RLIMIT_FSIZE bounds each file, not their
number); the audit hook against a program written to get around it (PEP 578 hooks are not a
security boundary: a fresh module object made through ``_imp``, or a path object whose
``__fspath__`` changes between the check and the call, can slip past it), which matters where
the kernel layers are missing, above all on a platform without namespaces, where only the hook
stops sockets and writes outside the folder; and the statuses themselves, which are the
program's own account (it can exit with any code it likes): only what it printed, checked by
the caller, says whether it did something right.
"""

from .limits import SandboxLimitError, SandboxLimits
from .pool import SandboxJob, SandboxPool
from .result import SandboxResult, Status
from .runner import SandboxInputError, SandboxSetupError, isolation, run_python

__all__ = [
    "SandboxInputError",
    "SandboxJob",
    "SandboxLimitError",
    "SandboxLimits",
    "SandboxPool",
    "SandboxResult",
    "SandboxSetupError",
    "Status",
    "isolation",
    "run_python",
]
