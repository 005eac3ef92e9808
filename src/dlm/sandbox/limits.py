"""The limits one sandboxed program runs under, checked when they are made.

``SandboxLimits`` is frozen: a pool or a reward function holds one and every program it runs
gets the same. Each field is checked on construction; a bad value raises
``SandboxLimitError`` (a ``DlmUserError``) whose one-line message names the field, its range
and the value given.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields

from dlm.errors import DlmUserError

__all__ = ["SandboxLimitError", "SandboxLimits"]

MIB = 1024 * 1024


class SandboxLimitError(DlmUserError):
    """A sandbox limit outside its range; the message names the field."""


#: field -> (smallest allowed value, largest allowed value, what it counts)
_RANGES: dict[str, tuple[float, float, str]] = {
    "wall_seconds": (0.05, 24 * 3600, "seconds of wall-clock time"),
    "cpu_seconds": (1, 24 * 3600, "whole seconds of CPU time"),
    "memory_mb": (32, 1024 * 1024, "MiB of address space"),
    "max_open_files": (8, 65536, "open file descriptors"),
    "max_processes": (1, 4096, "processes and threads, the program itself included"),
    "max_output_bytes": (0, 1 << 30, "bytes of stdout and of stderr kept"),
    "max_file_mb": (1, 1024 * 1024, "MiB per file written"),
}


@dataclass(frozen=True)
class SandboxLimits:
    """What one program may use.

    ``wall_seconds``: killed (status ``timeout``) after this long, whatever it is doing;
    ``cpu_seconds``: RLIMIT_CPU, a whole number (status ``cpu_limit``); ``memory_mb``:
    RLIMIT_AS, the address space (status ``memory_limit``); ``max_open_files``:
    RLIMIT_NOFILE; ``max_processes``: RLIMIT_NPROC, processes and threads of the program at
    once, itself included (1: no thread or child at all); ``max_output_bytes``: how much of
    stdout and of stderr is read back (the rest is cut, ``truncated`` is set);
    ``max_file_mb``: RLIMIT_FSIZE, the size of any file the program writes, its stdout and
    stderr included (status ``output_limit`` when reached).
    """

    wall_seconds: float = 10.0
    cpu_seconds: int = 5
    memory_mb: int = 512
    max_open_files: int = 64
    max_processes: int = 1
    max_output_bytes: int = 64 * 1024
    max_file_mb: int = 16

    def __post_init__(self) -> None:
        for item in fields(self):
            _check(item.name, getattr(self, item.name), whole=item.name != "wall_seconds")

    @property
    def memory_bytes(self) -> int:
        return self.memory_mb * MIB

    @property
    def file_bytes(self) -> int:
        return self.max_file_mb * MIB


def _check(name: str, value: object, whole: bool) -> None:
    low, high, unit = _RANGES[name]
    kind = "a whole number" if whole else "a number"
    if isinstance(value, bool) or not isinstance(value, int if whole else (int, float)):
        raise SandboxLimitError(f"sandbox limit {name} takes {kind} of {unit}; got {value!r}")
    if not (math.isfinite(value) and low <= value <= high):
        raise SandboxLimitError(
            f"sandbox limit {name} must be between {low:g} and {high:g} ({unit}); got {value!r}"
        )
