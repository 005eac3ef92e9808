"""The one family of errors a user can cause.

Everything a person can get wrong (a bad flag, a recipe key, a path, a checkpoint that is not
one, data that cannot be read, a sampler setting out of range) raises a ``DlmUserError`` with
a message that says what to change. The CLI prints exactly these as one line and exits with
status 2; any other exception is a bug in ``dlm`` and keeps its traceback.

``DlmUserError`` subclasses ``ValueError`` so that code written against the earlier
``ValueError``s keeps catching them.
"""

from __future__ import annotations

__all__ = ["DlmUserError", "SettingsError"]


class DlmUserError(ValueError):
    """A mistake in what the user gave ``dlm``; the message says what to change."""


class SettingsError(DlmUserError):
    """A sampler setting outside its allowed values (the message names the field)."""
