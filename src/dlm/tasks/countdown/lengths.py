"""An upper bound on the length of any correct Countdown answer (``max_answer_tokens``).

The reasoning is in the package docstring (``dlm.tasks.countdown``, "Answer length").
"""

from __future__ import annotations

from .search import MAX_NUMBER, MAX_TARGET

__all__ = ["answer_length_bound"]


def _shapes(k: int) -> list[tuple]:
    """All binary trees with k leaves; a leaf is (), a node (left, right)."""
    if k == 1:
        return [()]
    return [(left, right) for i in range(1, k) for left in _shapes(i) for right in _shapes(k - i)]


def _leaves(tree: tuple) -> int:
    return 1 if tree == () else _leaves(tree[0]) + _leaves(tree[1])


def _tree_chars(tree: tuple, bound: int, max_number: int, is_root: bool) -> int:
    """Characters the values of `tree` take in the answer, given the bound on its own value.

    A child's value is at most max_number ** (its leaves). When its parent's value is known to
    be positive (the root: the target) or its sibling is an input (1..max_number), the child is
    also at most max(parent + sibling, parent * sibling, sibling): it is the parent, the parent
    plus or times the sibling, or below the sibling. (Otherwise child * 0 = 0 leaves it free.)
    """
    if tree == ():
        return len(str(min(bound, max_number)))
    total = len(str(bound)) * (1 if is_root else 2)  # a result is written again as an operand
    for child, sibling in ((tree[0], tree[1]), (tree[1], tree[0])):
        child_bound = max_number ** _leaves(child)
        if is_root or sibling == ():
            sibling_max = max_number ** _leaves(sibling)
            child_bound = min(child_bound, max(bound * sibling_max, bound + sibling_max))
        total += _tree_chars(child, child_bound, max_number, False)
    return total


def answer_length_bound(k: int, max_number: int = MAX_NUMBER, max_target: int = MAX_TARGET) -> int:
    """An upper bound on len(target text) over every correct k-number answer (see module doc)."""
    if k < 2:
        raise ValueError(f"a Countdown answer needs at least 2 input numbers, got {k}")
    separators = 2 * (k - 1) + (k - 2)  # op and '=' per step, commas between steps
    digits = max(_tree_chars(t, max_target, max_number, True) for t in _shapes(k))
    return digits + separators
