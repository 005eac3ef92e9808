"""Random 3-SAT as a task: seeded formulas near the threshold, solved by pycosat, a clause verifier.

Text format (one character per literal, so every clause is exactly three tokens):

- Variables are the letters ``a`` .. ``l`` (variable 1 = ``a``, up to 12 variables). A positive
  literal is the lowercase letter, a negated literal the uppercase letter: ``B`` means "not b".
- The prompt is the clauses in generation order, each three literals written together,
  separated by ``,``. A formula of m clauses is 4*m - 1 characters.
- The target is the assignment: n characters ``0``/``1``, one per variable in order
  (``a`` first), no separators.

Example (``SatTask(5).generate(1, seed=0)``; the 41-clause, 163-character prompt is cut)::

    prompt: "eAd,deA,cAD,BCa,cDa,CaB,..."      target: "11001"

``eAd`` is (e or not a or d); the target sets a=1, b=1, c=0, d=0, e=1.

This is more compact than MGDM's space-separated tokens (~6 per clause, 2n for the answer):
4 tokens per clause and n + 1 (with ``[EOS]``) for the answer.

Generation, all from one ``random.Random(seed)``:

1. m clauses drawn independently and uniformly (with replacement) from all clauses of three
   distinct variables in random order with random signs (the usual random 3-SAT model);
2. a formula that leaves one of the n variables out is redrawn, so n can be read off the
   prompt (the highest letter); at the default m that almost never happens;
3. it is kept only if pycosat (a CDCL solver) finds it satisfiable; with ``unique``, only if
   ``pycosat.itersolve`` finds exactly one satisfying assignment;
4. the target is the assignment pycosat returns (deterministic for a given formula).

The default m is the Crawford–Auton threshold fit ``round(4.26*n + 58.26*n**(-2/3))``, where
about half of the random formulas are satisfiable: 41, 46 and 52 clauses for n = 5, 7, 9 (the
counts the MGDM input lengths suggest). Over very few variables the distinct formulas run out
(n = 3 at its default 41 clauses has only a few dozen satisfiable clause sets), and
``generate`` raises a ValueError saying so.

The verifier checks the rules: the answer (surrounding whitespace ignored) must be exactly n
characters of ``0``/``1``, n read from the prompt, and satisfy every clause. Any satisfying assignment counts, not just the stored one.
``paper_metric`` is MGDM's fallback metric instead: exact match with the stored assignment.

Metrics (``task.metrics``, ``dlm eval --metric NAME``): ``verify`` (the clause check above) and
``paper`` (``paper_metric``: exact match with the stored assignment, spaces ignored).
"""

from __future__ import annotations

import random
from collections.abc import Iterator, Mapping, Sequence
from functools import cache
from itertools import islice

import pycosat
from transformers import PreTrainedTokenizerFast

from dlm.data.char_tokenizer import build_char_tokenizer
from dlm.errors import DlmUserError
from dlm.tasks.base import Example, Metric, Task

__all__ = [
    "SatTask",
    "crawford_auton_clauses",
    "format_formula",
    "parse_formula",
    "parse_assignment",
    "satisfies",
    "count_models",
    "random_formula",
    "formula_key",
    "num_variables",
]

MIN_VARIABLES = 3
MAX_VARIABLES = 12
POSITIVE = "abcdefghijkl"
NEGATIVE = POSITIVE.upper()
ALPHABET = "01," + POSITIVE + NEGATIVE

# A clause is a tuple of DIMACS literals: +v for variable v (1-based), -v for its negation.
Clause = tuple[int, ...]

# Give up making one instance after this many unsatisfiable (or non-unique) formulas in a row.
_MAX_ATTEMPTS = 20_000

_LETTER_TO_LITERAL = {ch: i + 1 for i, ch in enumerate(POSITIVE)} | {
    ch: -(i + 1) for i, ch in enumerate(NEGATIVE)
}


def crawford_auton_clauses(n: int) -> int:
    """Crawford and Auton's 3-SAT threshold fit: round(4.26*n + 58.26*n**(-2/3)) clauses."""
    return round(4.26 * n + 58.26 * n ** (-2 / 3))


# --------------------------------------------------------------------------------------------
# Text


def _literal_char(lit: int) -> str:
    return POSITIVE[lit - 1] if lit > 0 else NEGATIVE[-lit - 1]


def format_formula(clauses: Sequence[Clause]) -> str:
    """The prompt text: each clause's literals as letters (uppercase = negated), ','-joined."""
    return ",".join("".join(_literal_char(lit) for lit in clause) for clause in clauses)


def parse_formula(text: str) -> list[Clause]:
    """The clauses of a prompt; raises ValueError on a malformed one."""
    clauses: list[Clause] = []
    for part in text.strip().split(","):
        if len(part) != 3 or any(ch not in _LETTER_TO_LITERAL for ch in part):
            raise ValueError(
                f"a clause is three literal letters a-l / A-L, got {part!r} in {text!r:.120}"
            )
        clauses.append(tuple(_LETTER_TO_LITERAL[ch] for ch in part))
    return clauses


def num_variables(clauses: Sequence[Clause]) -> int:
    """The highest variable index in `clauses` (generated formulas use every variable)."""
    return max(abs(lit) for clause in clauses for lit in clause)


def parse_assignment(text: str, n: int) -> list[bool] | None:
    """The assignment in `text` (n characters '0'/'1', whitespace around ignored), or None."""
    s = text.strip()
    if len(s) != n or not all(ch in "01" for ch in s):
        return None
    return [ch == "1" for ch in s]


def satisfies(clauses: Sequence[Clause], assignment: Sequence[bool]) -> bool:
    """True when every clause has a literal made true by `assignment` (variable v at v-1)."""
    return all(any(assignment[abs(lit) - 1] == (lit > 0) for lit in clause) for clause in clauses)


def count_models(clauses: Sequence[Clause], n: int, limit: int = 2) -> int:
    """The number of satisfying assignments over variables 1..n, counting no further than `limit`."""
    return sum(1 for _ in islice(pycosat.itersolve([list(c) for c in clauses], vars=n), limit))


# --------------------------------------------------------------------------------------------
# Generation


@cache
def _clause_pool(n: int) -> tuple[Clause, ...]:
    """Every ordered triple of distinct variables with every sign pattern (uniform draws)."""
    pool = []
    for x in range(1, n + 1):
        for y in range(1, n + 1):
            for z in range(1, n + 1):
                if len({x, y, z}) == 3:
                    for signs in range(8):
                        pool.append(
                            (
                                x if signs & 1 else -x,
                                y if signs & 2 else -y,
                                z if signs & 4 else -z,
                            )
                        )
    return tuple(pool)


def random_formula(rng: random.Random, n: int, m: int) -> list[Clause]:
    """m random 3-clauses over variables 1..n (distinct variables per clause, random signs)."""
    return rng.choices(_clause_pool(n), k=m)


def formula_key(clauses: Sequence[Clause]) -> frozenset[frozenset[int]]:
    """The formula as a set of clauses (each a set of literals): the identity used for splits."""
    return frozenset(frozenset(c) for c in clauses)


class SatTask(Task):
    """Random 3-SAT with `variables` (3..12) variables and `clauses` clauses.

    `clauses` defaults to the Crawford–Auton threshold count (41 / 46 / 52 for n = 5 / 7 / 9).
    With `unique`, only formulas with exactly one satisfying assignment are kept.
    """

    name: str = "sat"
    unit = "formulas"

    def __init__(
        self, variables: int = 5, clauses: int | None = None, unique: bool = False
    ) -> None:
        variables = int(variables)
        if not MIN_VARIABLES <= variables <= MAX_VARIABLES:
            raise DlmUserError(
                f"variables must lie in {MIN_VARIABLES}..{MAX_VARIABLES} (one letter a-l each), "
                f"got {variables}"
            )
        self.variables = variables
        self.clauses = crawford_auton_clauses(variables) if clauses is None else int(clauses)
        if self.clauses < 1:
            raise DlmUserError(f"clauses must be at least 1, got {self.clauses}")
        self.unique = bool(unique)

    def __repr__(self) -> str:
        return f"SatTask(variables={self.variables}, clauses={self.clauses}, unique={self.unique})"

    @property
    def max_answer_tokens(self) -> int:
        """Target length plus [EOS]: n assignment characters + 1."""
        return self.variables + 1

    @property
    def max_prompt_tokens(self) -> int:
        """Prompt length: 3 letters per clause plus the ',' separators."""
        return 4 * self.clauses - 1

    # ---- Task protocol ------------------------------------------------------------------

    def tokenizer(self) -> PreTrainedTokenizerFast:
        """Character-level tokenizer over '0', '1', ',', a-l and A-L (the same for every n)."""
        return build_char_tokenizer(ALPHABET)

    def verify(self, example: Example, answer: str) -> bool:
        """True when `answer` is n '0'/'1' characters that satisfy every clause of the prompt."""
        try:
            clauses = parse_formula(example.prompt)
        except ValueError:
            return False
        assignment = parse_assignment(answer, num_variables(clauses))
        return assignment is not None and satisfies(clauses, assignment)

    # ---- extras -------------------------------------------------------------------------

    def distinct_key(self, example: Example) -> frozenset[frozenset[int]]:
        """The formula as a set of clauses: generated formulas are distinct as such, and no
        test formula is in train in any order of its clauses or literals."""
        return formula_key(parse_formula(example.prompt))

    def stream(self, rng: random.Random) -> Iterator[Example]:
        """Kept formulas drawn from `rng` (``generate``/``held_out`` take distinct ones)."""
        while True:
            clauses, target = self.make_instance(rng)
            meta = {"n": self.variables, "m": self.clauses}
            yield Example(format_formula(clauses), target, meta)

    def bucket(self, example: Example) -> str:
        """f"n{n}", n the number of variables (the highest variable letter of the prompt)."""
        return f"n{num_variables(parse_formula(example.prompt))}"

    def answer_of(self, text: str) -> str | None:
        """The assignment string (stripped), or None unless it is n characters of '0'/'1'."""
        s = text.strip()
        return s if parse_assignment(s, self.variables) is not None else None

    def paper_metric(self, example: Example, answer: str) -> bool:
        """MGDM's fallback metric: exact match with the stored assignment (spaces ignored)."""
        return "".join(answer.split()) == example.target

    @property
    def metrics(self) -> Mapping[str, Metric]:
        return {**super().metrics, "paper": self.paper_metric}

    def make_instance(self, rng: random.Random) -> tuple[list[Clause], str]:
        """One kept formula and the target assignment string, drawn from `rng`."""
        n, m = self.variables, self.clauses
        for _ in range(_MAX_ATTEMPTS):
            clauses = random_formula(rng, n, m)
            if len({abs(lit) for c in clauses for lit in c}) != n:
                continue
            solution = pycosat.solve(clauses, vars=n)
            if solution == "UNSAT":
                continue
            if self.unique and count_models(clauses, n, limit=2) != 1:
                continue
            return clauses, "".join("1" if lit > 0 else "0" for lit in solution)
        raise DlmUserError(
            f"{self!r}: no formula was kept in {_MAX_ATTEMPTS} draws; lower `clauses` "
            f"(the threshold count for n={n} is {crawford_auton_clauses(n)})"
            + (" or drop `unique`" if self.unique else "")
        )
