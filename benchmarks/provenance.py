"""What every benchmark prints beside its figures: the commit it ran at."""

from __future__ import annotations

import subprocess


def git_commit() -> str:
    """The short hash of HEAD, or 'unknown' outside a git checkout."""
    out = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=False
    )
    return out.stdout.strip() or "unknown"
