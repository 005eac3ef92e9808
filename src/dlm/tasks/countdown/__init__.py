"""Countdown (CD3/CD4/CD5) and Game of 24 as a task: Stream-of-Search generation, exact checks.

Given k input numbers and a target, combine the numbers with + - * / (each number used exactly
once, integers only) to reach the target. As in MGDM, the answer is written as its k-1
equations.

Text format (MGDM), alphabet ``0123456789*+-/=,``, no spaces::

    prompt  "86,28,13,31,96"                  the k input numbers, then the target
    target  "86+28=114,31-13=18,114-18=96"    k-1 steps ``a op b=c``, comma separated

Splits (``split=``):

``"standard"`` (CD3/CD4/CD5, ``numbers`` = k in {3, 4, 5}), generated as Stream-of-Search
(Gandhi et al. 2024) does:

1. the target values 10..100 are shuffled with a seed-derived order and the first
   ``heldout_fraction`` of them (10%, i.e. 9 of 91) are held out: test examples use only
   held-out targets, train examples never do;
2. per example a target is drawn uniformly from its part, then k numbers uniformly from 1..99,
   redrawn until the search below solves them;
3. the search is a depth-first search over unordered pairs of the current numbers (in index
   order i < j; the rest keep their order and the result is appended), trying a+b, a*b,
   larger-smaller and larger/smaller (the latter only when exact; never dividing by 0); the
   first solution found is the gold target. (A DFS over ordered pairs would only repeat the
   commutative cases, since - and / are always written larger first.)

``"24"`` (Game of 24, ``numbers=4`` only; ``cd4_tot24`` in MGDM): four numbers drawn uniformly
from 1..13 whose target is 24, redrawn until the same integer-only search solves them (so
games that need fractions, such as 1,5,5,5, are excluded). The prompt is ``"a,b,c,d,24"``.
MGDM's released ``cd4_tot24`` output is only ``"=24"``; here the target keeps the full
equations, so the strict verifier can check them. Held-out rule: the solvable 4-multisets are
shuffled with the seed-derived order and the first ``heldout_fraction`` of them are held out,
so no test multiset (in any order) appears in train.

The held-out order comes from the ``seed`` given to ``generate``/``held_out``, or from
``holdout_seed`` when set (then datasets made with different seeds share one held-out set).
``generate(n, seed)`` returns the training distribution, ``held_out(n, 0, seed)[0]``.

Verification:

* ``verify`` (strict): the answer splits on ``,`` into exactly k-1 steps, each ``a op b=c``
  with canonical non-negative integers (no signs, no leading zeros, no spaces) and exact
  arithmetic: ``a-b`` needs a >= b (a negative result cannot be written, as '-' would be
  ambiguous), ``a/b`` needs b > 0 dividing a; + and * take their operands in either order.
  Each step takes its two operands from the multiset of available numbers (initially the
  inputs) and adds its result; the last result must be the target. Any correct solution
  passes, not only the stored one.
* ``lenient_verify`` reproduces MGDM's ``metric.py`` judge for comparability: every
  sub-equation's left side starts with ``\\d+[+-*/]\\d+`` and evaluates (as Python would,
  without ``eval``) to its right side, and the last right side equals the gold one as a
  string; inputs are never checked for use and the step count is free.

Generation speed: a value-set test (``is_solvable``) rejects unsolvable draws before the
depth-first search runs; it agrees with the search (tested). 50,000 examples take about 8 /
10 / 21 s for CD3 / CD4 / CD5 on one core. The random stream is not SoS's (only the procedure
is reproduced).

Answer length: SoS does not cap intermediate values and neither does this module. A value
built from m inputs is at most 99^m. If its parent's value p is known positive (the root: the
target) or its sibling is an input, it is also at most max(p * s, p + s) for s the sibling's
bound: it is p, p plus or times the sibling, or at most the sibling. (A built sibling can be 0,
and x * 0 = 0 frees x.) ``answer_length_bound`` sums the digits under these bounds over the
worst binary tree (every intermediate result is written twice): 22 / 35 / 52 characters for
CD3 / CD4 / CD5 and 30 for the Game of 24, so ``max_answer_tokens`` is 23 / 36 / 53 / 31
(MGDM's AR ``max_new_tokens`` are 24 / 32 / 54). The bound is attained on small ranges
(brute force in the tests).

Metrics (``task.metrics``, ``dlm eval --metric NAME``): ``verify`` (the strict check) and
``lenient`` (``lenient_verify``, MGDM's judge above).

Modules: ``search`` (the SoS search, the solvability test, the number ranges), ``checker``
(the text format, the strict and lenient judges), ``lengths`` (the answer length bound) and
``task`` (``CountdownTask``).
"""

from .checker import ALPHABET, check_solution, format_steps, lenient_check, parse_prompt
from .lengths import answer_length_bound
from .search import game24_solvable_multisets, is_solvable, search
from .task import CountdownTask

__all__ = [
    "ALPHABET",
    "CountdownTask",
    "answer_length_bound",
    "check_solution",
    "format_steps",
    "game24_solvable_multisets",
    "is_solvable",
    "lenient_check",
    "parse_prompt",
    "search",
]
