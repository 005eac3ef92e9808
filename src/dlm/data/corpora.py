"""Offline text corpora that every machine has, for pretraining and adaptation without downloads.

``python-stdlib``: the source files of the running Python's standard library (top-level
modules and packages, tests excluded), split into train and held-out files by a hash of the
file's path, so the split is stable and no held-out file leaks into training. The text depends
on the Python version; record it with any result.
"""

from __future__ import annotations

import hashlib
import random
import string
import sysconfig
from pathlib import Path

from transformers import PreTrainedTokenizerFast

from .char_tokenizer import build_char_tokenizer
from .files import DataError

__all__ = [
    "CORPORA",
    "CODE_ALPHABET",
    "corpus_documents",
    "corpus_tokenizer",
    "corpus_windows",
    "python_stdlib_files",
]

CORPORA = ("python-stdlib",)
CODE_ALPHABET = "".join(sorted(set(string.printable) - set("\x0b\x0c\r")))
_SKIP_PARTS = {
    "test",
    "tests",
    "idlelib",
    "lib2to3",
    "site-packages",
    "__pycache__",
    "turtledemo",
    "tkinter",
}


def python_stdlib_files(
    split: str = "train", held_out_percent: int = 5, max_files: int | None = None
) -> list[Path]:
    """The standard library's ``.py`` files of one split, in a stable order."""
    if split not in ("train", "eval"):
        raise DataError(f"split must be 'train' or 'eval'; got {split!r}")
    root = Path(sysconfig.get_paths()["stdlib"])
    chosen = []
    for path in sorted(root.rglob("*.py")):
        rel = path.relative_to(root)
        if _SKIP_PARTS & set(rel.parts):
            continue
        bucket = int(hashlib.sha1(str(rel).encode()).hexdigest(), 16) % 100
        if (bucket < held_out_percent) == (split == "eval"):
            chosen.append(path)
    return chosen[:max_files] if max_files else chosen


def corpus_documents(name: str, split: str = "train", **options) -> list[str]:
    """The documents of a named corpus, restricted to the characters of its tokenizer."""
    if name not in CORPORA:
        raise DataError(f"unknown corpus {name!r}; available: {', '.join(CORPORA)}")
    allowed = set(CODE_ALPHABET)
    docs = []
    for path in python_stdlib_files(split, **options):
        text = path.read_text(encoding="utf-8", errors="replace")
        docs.append("".join(ch if ch in allowed else "?" for ch in text.replace("\r\n", "\n")))
    if not docs:
        raise DataError(f"corpus {name!r} has no {split} documents on this machine")
    return docs


def corpus_tokenizer(name: str) -> PreTrainedTokenizerFast:
    """Character-level tokenizer over printable ASCII (tabs and newlines included)."""
    if name not in CORPORA:
        raise DataError(f"unknown corpus {name!r}; available: {', '.join(CORPORA)}")
    return build_char_tokenizer(CODE_ALPHABET)


def corpus_windows(
    tokenizer, name: str, n: int, context: int, scored: int, seed: int, split: str = "eval"
) -> list[tuple[list[int], list[int]]]:
    """``n`` seeded (context, scored) token windows cut from the documents of one split.

    Each window is ``context + scored`` characters at a random offset of a random document
    long enough to hold it; the tokenizer is the corpus's character-level one, so the ids split
    at ``context``. These are the (prefix, continuation) pairs of a held-out likelihood.
    """
    rng = random.Random(seed)
    docs = [d for d in corpus_documents(name, split) if len(d) > context + scored]
    if not docs:
        raise DataError(
            f"no {split} document of corpus {name!r} is longer than {context + scored} "
            "characters; lower the context or the scored length"
        )
    out = []
    while len(out) < n:
        doc = rng.choice(docs)
        at = rng.randrange(0, len(doc) - context - scored)
        ids = tokenizer.encode(doc[at : at + context + scored], add_special_tokens=False)
        out.append((ids[:context], ids[context:]))
    return out
