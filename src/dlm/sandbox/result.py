"""What running one program in the sandbox gave: a status to switch on, and its output.

``Status`` is a ``str`` enum, so ``result.status == "timeout"`` works as well as
``result.status is Status.TIMEOUT``. The status is read from how the process ended: the wall
clock (``timeout``, decided by the parent), the kernel's limits (``cpu_limit``: killed at
RLIMIT_CPU; ``output_limit``: a file, stdout or stderr reached RLIMIT_FSIZE) and the exit code
the sandbox's bootstrap sets for an uncaught ``MemoryError`` (``memory_limit``) or refusal of
the audit guard (``refused``). A program can always exit with those codes itself; the status
is its own account of how it ended, never evidence that it did something right.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

__all__ = ["SandboxResult", "Status"]


class Status(str, enum.Enum):
    """How a sandboxed program ended."""

    OK = "ok"  # exited with status 0
    ERROR = "error"  # a non-zero exit, an uncaught exception, or a signal not listed below
    TIMEOUT = "timeout"  # killed after wall_seconds
    CPU_LIMIT = "cpu_limit"  # killed by the kernel at cpu_seconds of CPU
    MEMORY_LIMIT = "memory_limit"  # MemoryError under RLIMIT_AS
    OUTPUT_LIMIT = "output_limit"  # stdout, stderr or a file reached max_file_mb
    REFUSED = "refused"  # the audit guard refused an operation and the program did not catch it

    def __str__(self) -> str:
        return self.value


@dataclass(frozen=True)
class SandboxResult:
    """One program's outcome: ``status``, ``returncode`` (None when a signal ended it),
    ``signal`` (its number, else None), ``stdout``/``stderr`` (decoded as UTF-8, cut at
    ``max_output_bytes``), ``truncated`` (either was cut), ``seconds`` (wall clock),
    ``cpu_seconds`` (user + system) and ``layers`` (the isolation layers that were active)."""

    status: Status
    returncode: int | None
    signal: int | None
    stdout: str
    stderr: str
    truncated: bool
    seconds: float
    cpu_seconds: float
    layers: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return self.status is Status.OK
