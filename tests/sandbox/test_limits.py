"""``SandboxLimits`` checks every field when it is made, with a one-line error naming it."""

from __future__ import annotations

import dataclasses

import pytest

from dlm.errors import DlmUserError
from dlm.sandbox import SandboxLimitError, SandboxLimits, SandboxPool


def test_the_defaults_are_valid_and_frozen():
    limits = SandboxLimits()
    assert (limits.wall_seconds, limits.cpu_seconds, limits.max_processes) == (10.0, 5, 1)
    assert limits.memory_bytes == 512 * 1024 * 1024
    assert limits.file_bytes == 16 * 1024 * 1024
    with pytest.raises(dataclasses.FrozenInstanceError):
        limits.cpu_seconds = 1  # type: ignore[misc]


@pytest.mark.parametrize(
    ("field", "value", "words"),
    [
        ("wall_seconds", 0, "between 0.05 and"),
        ("wall_seconds", float("nan"), "between 0.05 and"),
        ("cpu_seconds", 0, "between 1 and"),
        ("cpu_seconds", 1.5, "whole number"),
        ("memory_mb", 8, "between 32 and"),
        ("max_open_files", 2, "between 8 and"),
        ("max_processes", 0, "between 1 and"),
        ("max_output_bytes", -1, "between 0 and"),
        ("max_file_mb", 0, "between 1 and"),
        ("max_processes", True, "whole number"),
        ("memory_mb", "512", "whole number"),
    ],
)
def test_a_bad_limit_names_its_field_and_range(field, value, words):
    with pytest.raises(SandboxLimitError) as caught:
        SandboxLimits(**{field: value})
    message = str(caught.value)
    assert isinstance(caught.value, DlmUserError)
    assert message.startswith(f"sandbox limit {field} ")
    assert words in message and "\n" not in message


@pytest.mark.parametrize(("workers", "pending"), [(0, 1), (1, 0), (1.5, 2)])
def test_a_pool_refuses_a_size_below_one(workers, pending):
    with pytest.raises(SandboxLimitError, match="SandboxPool (workers|max_pending) must be"):
        SandboxPool(workers, pending)
