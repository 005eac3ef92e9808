"""Countdown's text format and its two judges: the strict rule check and MGDM's lenient one.

``check_solution`` (the task's ``verify``) and ``lenient_check`` (its ``lenient`` metric) are
described in the package docstring (``dlm.tasks.countdown``).
"""

from __future__ import annotations

import ast
import operator
import re
from collections import Counter

from .search import Step

__all__ = ["ALPHABET", "check_solution", "format_steps", "lenient_check", "parse_prompt"]

ALPHABET = "0123456789*+-/=,"

# One step: canonical non-negative integers (no sign, no leading zero), one operator.
_INT = r"(0|[1-9][0-9]*)"
_STEP = re.compile(_INT + r"([+\-*/])" + _INT + "=" + _INT)
# MGDM's check_eq: the left side must start like this (re.match, not fullmatch).
_MGDM_LEFT = re.compile(r"(\d+)([+\-*/])(\d+)")


def format_steps(steps: list[Step]) -> str:
    """Steps as the target text ``a op b=c,...``."""
    return ",".join(f"{a}{op}{b}={c}" for a, op, b, c in steps)


def parse_prompt(prompt: str) -> tuple[list[int], int]:
    """(input numbers, target) from ``"n1,...,nk,target"``; ValueError when malformed."""
    parts = prompt.strip().split(",")
    if len(parts) < 2 or not all(p.isascii() and p.isdigit() for p in parts):
        raise ValueError(f"a Countdown prompt is comma-separated integers, got {prompt!r:.120}")
    values = [int(p) for p in parts]
    return values[:-1], values[-1]


def _apply(a: int, op: str, b: int) -> int | None:
    """The exact non-negative integer a op b, or None (negative, inexact or division by 0)."""
    if op == "+":
        return a + b
    if op == "*":
        return a * b
    if op == "-":
        return a - b if a >= b else None
    if b != 0 and a % b == 0:
        return a // b
    return None


def check_solution(nums: list[int], target: int, answer: str) -> bool:
    """Strict check: k-1 exact steps, operands taken from the available multiset, last = target."""
    parts = answer.strip().split(",")
    if len(parts) != len(nums) - 1:
        return False
    available = Counter(nums)
    result = None
    for part in parts:
        match = _STEP.fullmatch(part)
        if match is None:
            return False
        a, op, b, c = int(match[1]), match[2], int(match[3]), int(match[4])
        if _apply(a, op, b) != c:
            return False
        available[a] -= 1
        available[b] -= 1
        if available[a] < 0 or available[b] < 0:
            return False
        available[c] += 1
        result = c
    return result == target


_BIN_OPS = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv,
    ast.Mod: operator.mod,
    ast.Pow: operator.pow,
}
_UNARY_OPS = {ast.UAdd: operator.pos, ast.USub: operator.neg}


def _arith_eval(node: ast.AST) -> int | float:
    """Python's value of a pure arithmetic expression tree; ValueError for anything else."""
    if isinstance(node, ast.Expression):
        return _arith_eval(node.body)
    if isinstance(node, ast.Constant) and type(node.value) in (int, float):
        return node.value
    if isinstance(node, ast.UnaryOp) and type(node.op) in _UNARY_OPS:
        return _UNARY_OPS[type(node.op)](_arith_eval(node.operand))
    if isinstance(node, ast.BinOp) and type(node.op) in _BIN_OPS:
        left, right = _arith_eval(node.left), _arith_eval(node.right)
        if isinstance(node.op, ast.Pow) and (abs(right) > 64 or abs(left) > 10**6):
            raise ValueError("exponent too large to evaluate safely")
        return _BIN_OPS[type(node.op)](left, right)
    raise ValueError(f"not plain arithmetic: {ast.dump(node):.80}")


def _mgdm_check_eq(left: str, right: str) -> bool:
    """MGDM's ``check_eq``: ``eval(left) == float(right)`` after a prefix regex, without eval."""
    if _MGDM_LEFT.match(left) is None:
        return False
    try:
        return _arith_eval(ast.parse(left, mode="eval")) == float(right)
    except (SyntaxError, ValueError, ArithmeticError, TypeError):
        return False


def lenient_check(answer: str, gold_target: str) -> bool:
    """MGDM's Countdown judge: each sub-equation holds and the last right sides match.

    `gold_target` is the stored target text (only its last right side is read). Surrounding
    whitespace of `answer` is stripped (MGDM's decoded text has none).
    """
    answer = answer.strip()
    for sub in answer.split(","):
        sides = sub.split("=")
        if len(sides) != 2 or not _mgdm_check_eq(sides[0], sides[1]):
            return False
    return answer.split("=")[-1] == gold_target.split("=")[-1]
