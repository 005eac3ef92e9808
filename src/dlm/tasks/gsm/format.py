"""GSM8K-Aug's text format: ``<<expression=value>>`` thoughts, the "#### answer", the files.

``thoughts``/``join_thoughts`` split a target into its thoughts and back; ``parse_gsm_line`` and
``load_gsm_file`` read Implicit-CoT's ``question||rationale #### answer`` lines (see the package
docstring, ``dlm.tasks.gsm``).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from fractions import Fraction
from pathlib import Path

from dlm.data import DataError
from dlm.tasks.base import Example
from dlm.tasks.thoughts import ANSWER_MARK, split_rationale
from dlm.tasks.thoughts import answer_after_mark as answer_of

__all__ = ["ALPHABET", "answer_of", "join_thoughts", "load_gsm_file", "parse_gsm_line", "thoughts"]

ALPHABET = "".join(chr(c) for c in range(32, 127)) + "’‘“”–—…€£½¼¾×÷°"
_THOUGHT = re.compile(r"<<.*?>>")
_THOUGHT_SPLIT = re.compile(r"(?<=>>) (?=<<)")


# --------------------------------------------------------------------------------------------
# Thoughts and answers


def thoughts(target: str) -> list[str]:
    """`target` split into its ``<<...>>`` thoughts, the answer part "#### ..." last.

    The rationale is the text before the first "####" (which must follow a space); it is split
    at every single space between ">>" and "<<". `join_thoughts` inverts this exactly. Raises
    ValueError when `target` has no "####".
    """
    rationale, answer = split_rationale(target)
    return [*_THOUGHT_SPLIT.split(rationale), answer] if rationale else [answer]


def join_thoughts(parts: Sequence[str]) -> str:
    """Inverse of `thoughts`: everything joined by single spaces (no parts give "").

    Joining the first k thoughts gives the start of the target (what a multi-pass prompt
    shows)."""
    return " ".join(parts)


def _number(text: str) -> Fraction | None:
    """`text` as an exact number once commas are removed; None when it is not one."""
    try:
        return Fraction(text.replace(",", "").strip())
    except (ValueError, ZeroDivisionError):
        return None


def _make_target(steps: list[str], answer: str, cot: bool) -> str:
    tail = f"{ANSWER_MARK} {answer}"
    return join_thoughts([*steps, tail]) if cot else tail


# --------------------------------------------------------------------------------------------
# GSM8K-Aug files


def parse_gsm_line(line: str, cot: bool = True) -> Example:
    """One GSM8K-Aug line ``question||<<a=b>> <<c=d>> #### answer`` as an Example.

    meta: ``steps`` (number of thoughts) and ``answer``. Raises ValueError when malformed.
    """
    question, sep, rest = line.rpartition("||")
    if not sep:
        raise ValueError("no '||' between the question and the rationale")
    question = question.strip()
    if not question:
        raise ValueError("empty question before '||'")
    if rest.count(ANSWER_MARK) != 1:
        raise ValueError(
            f"expected one '{ANSWER_MARK}' after '||', found {rest.count(ANSWER_MARK)}"
        )
    rationale, _, answer = rest.partition(ANSWER_MARK)
    answer = answer.strip()
    if not answer:
        raise ValueError(f"empty answer after '{ANSWER_MARK}'")
    steps = _THOUGHT.findall(rationale)
    stray = _THOUGHT.sub(" ", rationale).strip()
    if stray:
        raise ValueError(f"text outside the <<...>> thoughts: {stray!r:.60}")
    return Example(
        question, _make_target(steps, answer, cot), {"steps": len(steps), "answer": answer}
    )


def load_gsm_file(path: str | Path, cot: bool = True) -> list[Example]:
    """Every example of a GSM8K-Aug file (blank lines skipped), in file order.

    meta gets ``line`` (1-based) besides ``steps`` and ``answer``. Raises DataError naming the
    file and line for a malformed line, and for a file without examples.
    """
    out: list[Example] = []
    with open(path, encoding="utf-8") as f:
        for lineno, raw in enumerate(f, start=1):
            line = raw.rstrip("\r\n")
            if not line.strip():
                continue
            try:
                ex = parse_gsm_line(line, cot)
            except ValueError as err:
                raise DataError(
                    f"{path}:{lineno}: malformed GSM8K-Aug line ({err}); expected "
                    f"'question||<<a*b=c>> <<c+d=e>> #### answer', got {line!r:.120}"
                ) from None
            out.append(Example(ex.prompt, ex.target, {**ex.meta, "line": lineno}))
    if not out:
        raise DataError(f"{path}: no GSM8K-Aug examples in the file")
    return out
