"""Reading training data from disk with errors that say which file and line is wrong."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from dlm.atomic import atomic_write_text
from dlm.errors import DlmUserError

__all__ = ["DataError", "read_jsonl", "write_jsonl", "read_text_documents"]


class DataError(DlmUserError):
    """A data file cannot be used as given; the message says what to change."""


def read_jsonl(path: str | Path) -> list[dict[str, Any]]:
    """Every record of a JSON-lines file (blank lines skipped); an empty file is an error."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"data file {path} does not exist")
    records = []
    with path.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as err:
                raise DataError(
                    f"{path}:{number} is not valid JSON ({err.msg}); each line must be one JSON object"
                ) from err
            if not isinstance(record, dict):
                raise DataError(
                    f"{path}:{number} must be a JSON object, got {type(record).__name__}"
                )
            records.append(record)
    if not records:
        raise DataError(f"data file {path} is empty; it needs at least one JSON object per line")
    return records


def write_jsonl(path: str | Path, records: list[dict[str, Any]]) -> None:
    """Write records as JSON lines, atomically (an existing file is replaced only by a
    complete new one)."""
    atomic_write_text(path, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records))


def read_text_documents(path: str | Path, text_field: str = "text") -> list[str]:
    """Documents for pretraining: ``.jsonl`` records' ``text_field``, or a plain text file
    whose documents are separated by blank lines."""
    path = Path(path)
    if path.suffix == ".jsonl":
        records = read_jsonl(path)
        missing = [i for i, r in enumerate(records, 1) if text_field not in r]
        if missing:
            raise DataError(
                f"{path}: records {missing[:5]} have no '{text_field}' field; set data.text_field to the key that holds the text"
            )
        docs = [str(r[text_field]) for r in records]
    else:
        if not path.is_file():
            raise DataError(f"data file {path} does not exist")
        docs = [d for d in path.read_text(encoding="utf-8").split("\n\n") if d.strip()]
    if not docs:
        raise DataError(f"data file {path} holds no text")
    return docs
