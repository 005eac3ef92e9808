"""GSM8K-style math word problems with calculation thoughts (DoT's GSM8K-Aug task).

Text format (the Implicit-CoT GSM8K-Aug files that Diffusion of Thoughts trains on, one
example per line ``question||rationale #### answer``)::

    prompt  "Maria has 3 boxes of apples with 12 apples in each box. She gives 7 apples to
             Omar. How many apples does Maria have now?"   (one line)
    target  "<<3*12=36>> <<36-7=29>> #### 29"

Each thought is one ``<<expression=value>>`` calculation; thoughts are joined by single
spaces, then " #### " and the answer. With ``cot=False`` (the answer-only baseline) the target
is just "#### 29". `thoughts` splits a target into ["<<3*12=36>>", "<<36-7=29>>", "#### 29"]
(a space between ">>" and "<<" separates two thoughts) and `join_thoughts` inverts it exactly;
joining the first k thoughts gives the start of the target.

Two sources of examples:

* `load_gsm_file(path)` reads GSM8K-Aug lines (``data/gsm8k/{train,valid,test}.txt`` of
  Implicit-CoT). A line must have a non-empty question before "||", one "####" followed by a
  non-empty answer, and nothing but ``<<...>>`` thoughts (separated by whitespace) between
  them; otherwise a ValueError names the file and the line. Whitespace between thoughts is
  normalised to one space. `GsmTask(path=..., test_path=...)` serves these files.
* Without a path, a seeded generator writes templated word problems: a person starts with some
  items (given as a count, or as containers times items per container: one thought), then
  gains, loses, multiplies or gives away a percentage of them (one thought each, two for the
  percentage: the part, then the rest), and the question asks for the count, the share of each
  of m friends (exact division) or the money from selling them all. All arithmetic is on
  integers; running counts stay below 10,000. The number of thoughts is uniform over
  [``min_steps``, ``max_steps``] (2..4 by default).

Verification: `answer_of` is the text after the last "####", stripped; `verify` accepts an
answer numerically equal to the gold answer once commas are removed ("1,000" == "1000.0").
``bucket`` is the number of thoughts of the gold rationale (``meta["steps"]``), e.g. "3".

Tokenizer: character level over printable ASCII (space to "~") plus the typographic characters
GSM8K text uses (’ ‘ “ ” – — … € £ ½ ¼ ¾ × ÷ °). Any other character of real GSM8K-Aug text
(accented letters, other symbols) maps to [UNK] and vanishes when decoding.

Metrics (``task.metrics``, ``dlm eval --metric NAME``): ``verify`` only (GSM8K's accuracy is
this numeric match of the final answer).
"""

from __future__ import annotations

import random
import re
from collections.abc import Iterator, Sequence
from fractions import Fraction
from pathlib import Path

from transformers import PreTrainedTokenizerFast

from dlm.data.char_tokenizer import build_char_tokenizer
from dlm.tasks.base import Example
from dlm.tasks.thoughts import ANSWER_MARK, ThoughtTask, split_rationale
from dlm.tasks.thoughts import answer_after_mark as answer_of

__all__ = [
    "ALPHABET",
    "GsmTask",
    "answer_of",
    "join_thoughts",
    "load_gsm_file",
    "parse_gsm_line",
    "thoughts",
]

ALPHABET = "".join(chr(c) for c in range(32, 127)) + "’‘“”–—…€£½¼¾×÷°"
MIN_STEPS = 1
MAX_STEPS = 6
_THOUGHT = re.compile(r"<<.*?>>")
_THOUGHT_SPLIT = re.compile(r"(?<=>>) (?=<<)")

# Generator bounds: running counts stay below _CAP, so a thought is at most
# "<<9999*75/100=7499>>" (20 characters) and an answer at most 9999 * 15 (6 digits).
_CAP = 9_999
_MAX_THOUGHT_CHARS = 22
_MAX_ANSWER_CHARS = 6


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

    meta gets ``line`` (1-based) besides ``steps`` and ``answer``. Raises ValueError naming the
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
                raise ValueError(
                    f"{path}:{lineno}: malformed GSM8K-Aug line ({err}); expected "
                    f"'question||<<a*b=c>> <<c+d=e>> #### answer', got {line!r:.120}"
                ) from None
            out.append(Example(ex.prompt, ex.target, {**ex.meta, "line": lineno}))
    if not out:
        raise ValueError(f"{path}: no GSM8K-Aug examples in the file")
    return out


# --------------------------------------------------------------------------------------------
# Word-problem generator

_PEOPLE = (
    ("Maria", "she", "her", "her"),
    ("James", "he", "him", "his"),
    ("Aisha", "she", "her", "her"),
    ("Omar", "he", "him", "his"),
    ("Lena", "she", "her", "her"),
    ("Carlos", "he", "him", "his"),
    ("Priya", "she", "her", "her"),
    ("Tom", "he", "him", "his"),
    ("Sofia", "she", "her", "her"),
    ("Kenji", "he", "him", "his"),
    ("Grace", "she", "her", "her"),
    ("Diego", "he", "him", "his"),
    ("Hannah", "she", "her", "her"),
    ("Liam", "he", "him", "his"),
    ("Mei", "she", "her", "her"),
    ("Noah", "he", "him", "his"),
    ("Zara", "she", "her", "her"),
    ("Ethan", "he", "him", "his"),
    ("Chloe", "she", "her", "her"),
    ("Samuel", "he", "him", "his"),
)
_ITEMS = (
    ("apple", "apples"),
    ("marble", "marbles"),
    ("sticker", "stickers"),
    ("cookie", "cookies"),
    ("pencil", "pencils"),
    ("book", "books"),
    ("seashell", "seashells"),
    ("trading card", "trading cards"),
    ("flower", "flowers"),
    ("stamp", "stamps"),
    ("egg", "eggs"),
    ("cupcake", "cupcakes"),
    ("toy car", "toy cars"),
    ("balloon", "balloons"),
    ("candle", "candles"),
    ("orange", "oranges"),
    ("coin", "coins"),
    ("ribbon", "ribbons"),
    ("puzzle", "puzzles"),
    ("plant", "plants"),
)
_CONTAINERS = (
    ("box", "boxes"),
    ("bag", "bags"),
    ("pack", "packs"),
    ("basket", "baskets"),
    ("jar", "jars"),
    ("crate", "crates"),
)
_TIMES = {2: "twice", 3: "three times", 4: "four times"}
_PERCENTS = (10, 20, 25, 50, 75)


class _Story:
    """A word problem being written: sentences, thoughts and the running count."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.name, self.pron, self.obj, self.poss = _PEOPLE[rng.randrange(len(_PEOPLE))]
        self.item, self.items = _ITEMS[rng.randrange(len(_ITEMS))]
        self.sentences: list[str] = []
        self.steps: list[str] = []
        self.total = 0

    @property
    def cap_pron(self) -> str:
        """The pronoun capitalised, to start a sentence."""
        return self.pron.capitalize()

    def friend(self) -> str:
        while True:
            name = _PEOPLE[self.rng.randrange(len(_PEOPLE))][0]
            if name != self.name:
                return name

    def step(self, expr: str, value: int) -> None:
        self.steps.append(f"<<{expr}={value}>>")

    # ---- openings ------------------------------------------------------------------------

    def open_plain(self) -> None:
        self.total = self.rng.randint(8, 60)
        self.sentences.append(f"{self.name} has {self.total} {self.items}.")

    def open_groups(self) -> None:
        rng = self.rng
        box, boxes = _CONTAINERS[rng.randrange(len(_CONTAINERS))]
        a, b = rng.randint(2, 9), rng.randint(3, 12)
        self.total = a * b
        self.sentences.append(
            f"{self.name} has {a} {boxes} of {self.items} with {b} {self.items} in each {box}."
        )
        self.step(f"{a}*{b}", self.total)

    # ---- middle operations (one thought, percent two) --------------------------------------

    def middle_ops(self, budget: int) -> list[str]:
        """The operations that fit `budget` thoughts and the running count."""
        ops = ["gain"] if self.total + 2 <= _CAP else []
        if self.total >= 2:
            ops.append("lose")
        if self.total + 6 * 2 <= _CAP:
            ops.append("gain_groups")
        if self.total * 2 <= _CAP:
            ops.append("multiply")
        if budget >= 2 and self._percents():
            ops.append("percent")
        return ops

    def _percents(self) -> list[int]:
        return [p for p in _PERCENTS if self.total * p % 100 == 0]

    def gain(self) -> None:
        rng = self.rng
        n = rng.randint(2, min(40, _CAP - self.total))
        self.sentences.append(
            rng.choice(
                (
                    f"{self.cap_pron} buys {n} more {self.items}.",
                    f"{self.cap_pron} finds {n} more {self.items}.",
                    f"{self.friend()} gives {self.obj} {n} more {self.items}.",
                )
            )
        )
        self.step(f"{self.total}+{n}", self.total + n)
        self.total += n

    def gain_groups(self) -> None:
        rng = self.rng
        box, boxes = _CONTAINERS[rng.randrange(len(_CONTAINERS))]
        a = rng.randint(2, 6)
        b = rng.randint(2, min(12, (_CAP - self.total) // a))
        self.sentences.append(
            f"{self.cap_pron} buys {a} {boxes} with {b} {self.items} in each {box}."
        )
        self.step(f"{self.total}+{a}*{b}", self.total + a * b)
        self.total += a * b

    def lose(self) -> None:
        rng = self.rng
        n = rng.randint(1, min(40, self.total - 1))
        self.sentences.append(
            rng.choice(
                (
                    f"{self.cap_pron} gives {n} {self.items} to {self.friend()}.",
                    f"{self.cap_pron} sells {n} of {self.poss} {self.items}.",
                    f"{self.cap_pron} loses {n} {self.items}.",
                )
            )
        )
        self.step(f"{self.total}-{n}", self.total - n)
        self.total -= n

    def multiply(self) -> None:
        m = self.rng.randint(2, min(4, _CAP // self.total))
        self.sentences.append(
            f"A month later, {self.pron} has {_TIMES[m]} as many {self.items} as before."
        )
        self.step(f"{self.total}*{m}", self.total * m)
        self.total *= m

    def percent(self) -> None:
        p = self.rng.choice(self._percents())
        part = self.total * p // 100
        self.sentences.append(f"{self.cap_pron} gives away {p}% of {self.poss} {self.items}.")
        self.step(f"{self.total}*{p}/100", part)
        self.step(f"{self.total}-{part}", self.total - part)
        self.total -= part

    # ---- questions -------------------------------------------------------------------------

    def ask_count(self) -> int:
        self.sentences.append(f"How many {self.items} does {self.name} have now?")
        return self.total

    def ask_share(self) -> int:
        """Share among m friends (m divides the count); falls back to selling."""
        divisors = [m for m in range(2, 10) if self.total % m == 0]
        if not divisors:
            return self.ask_sale()
        m = self.rng.choice(divisors)
        self.sentences.append(
            f"{self.cap_pron} shares the {self.items} equally among {m} friends. "
            f"How many {self.items} does each friend get?"
        )
        self.step(f"{self.total}/{m}", self.total // m)
        return self.total // m

    def ask_sale(self) -> int:
        price = self.rng.randint(2, 15)
        self.sentences.append(
            f"{self.cap_pron} sells all of the {self.items} for ${price} each. "
            f"How many dollars does {self.pron} make?"
        )
        self.step(f"{self.total}*{price}", self.total * price)
        return self.total * price


def generate_word_problem(rng: random.Random, n_steps: int) -> tuple[str, list[str], int]:
    """(question, thoughts, answer) of a templated problem with exactly `n_steps` thoughts."""
    if not MIN_STEPS <= n_steps <= MAX_STEPS:
        raise ValueError(f"n_steps must lie in [{MIN_STEPS}, {MAX_STEPS}], got {n_steps}")
    story = _Story(rng)
    while True:
        opening = rng.randrange(2)  # thoughts of the opening
        question = rng.choice(("count", "share", "sale"))
        budget = n_steps - opening - (question != "count")
        if budget >= 0:
            break
    if opening:
        story.open_groups()
    else:
        story.open_plain()
    while budget > 0:
        op = rng.choice(story.middle_ops(budget))
        getattr(story, op)()
        budget -= 2 if op == "percent" else 1
    answer = getattr(story, f"ask_{question}")()
    return " ".join(story.sentences), story.steps, answer


# --------------------------------------------------------------------------------------------
# Task


class GsmTask(ThoughtTask):
    """GSM8K-style word problems: GSM8K-Aug files when `path` is set, else generated ones.

    `path` is the train file (Implicit-CoT format) and `test_path` the test file; without
    `test_path`, `held_out` holds out questions of the train file. `min_steps` /
    `max_steps` (1..6) bound the number of thoughts of generated problems. With `cot`
    (default) targets hold the thoughts; without, only "#### answer".
    """

    name: str = "gsm"
    unit = "problems"

    def __init__(
        self,
        path: str | Path | None = None,
        test_path: str | Path | None = None,
        cot: bool = True,
        min_steps: int = 2,
        max_steps: int = 4,
    ) -> None:
        if test_path is not None and path is None:
            raise ValueError("test_path needs path (the train file) too")
        if not isinstance(cot, bool):
            raise ValueError(f"cot must be True or False, got {cot!r}")
        for label, v in (("min_steps", min_steps), ("max_steps", max_steps)):
            if isinstance(v, bool) or not isinstance(v, int) or not MIN_STEPS <= v <= MAX_STEPS:
                raise ValueError(f"{label} must be an int in [{MIN_STEPS}, {MAX_STEPS}], got {v!r}")
        if min_steps > max_steps:
            raise ValueError(f"min_steps ({min_steps}) must not exceed max_steps ({max_steps})")
        self.path = None if path is None else Path(path)
        self.test_path = None if test_path is None else Path(test_path)
        self.cot = cot
        self.min_steps = min_steps
        self.max_steps = max_steps
        self._files: dict[Path, list[Example]] = {}

    def __repr__(self) -> str:
        return (
            f"GsmTask(path={self.path!r}, test_path={self.test_path!r}, cot={self.cot}, "
            f"min_steps={self.min_steps}, max_steps={self.max_steps})"
        )

    @property
    def max_answer_tokens(self) -> int:
        """An upper bound on len(target) + 1 ([EOS]): from the files when `path` is set
        (their longest target), else from the generator's number bounds."""
        if self.path is not None:
            files = [self.path] + ([self.test_path] if self.test_path else [])
            return max(len(e.target) for f in files for e in self._load(f)) + 1
        answer = len(f"{ANSWER_MARK} ") + _MAX_ANSWER_CHARS + 1
        if not self.cot:
            return answer
        return self.max_steps * (_MAX_THOUGHT_CHARS + 1) + answer

    # ---- Task protocol ------------------------------------------------------------------

    def tokenizer(self) -> PreTrainedTokenizerFast:
        """Character-level tokenizer over printable ASCII and common typographic characters."""
        return build_char_tokenizer(ALPHABET)

    def generate(self, n: int, seed: int) -> list[Example]:
        """`n` examples, identical for identical seed and options.

        Generated: distinct questions. From `path`: a seeded sample of `n` lines, in file order
        (GSM8K-Aug repeats questions with different rationales, so these may repeat questions).
        """
        _check_count(n, "examples")
        if self.path is not None:
            rng = random.Random(seed)
            return _sample(self._load(self.path), n, rng, str(self.path))
        return super().generate(n, seed)

    def verify(self, example: Example, answer: str) -> bool:
        """True when the text after the last "####" equals the gold answer as a number
        (commas removed); a non-numeric gold answer must match as text."""
        gold = answer_of(example.target)
        got = answer_of(answer)
        if gold is None or got is None:
            return False
        gold_value = _number(gold)
        if gold_value is None:
            return got.replace(",", "") == gold.replace(",", "")
        return _number(got) == gold_value

    # ---- extras -------------------------------------------------------------------------

    def held_out(self, n_train: int, n_test: int, seed: int) -> tuple[list[Example], list[Example]]:
        """(train, test) with no test question in train.

        Generated: test first from the seeded stream, then train with distinct, unseen
        questions. With `test_path`: a seeded sample of each file, train lines whose question
        is in the test file dropped. With `path` only: questions of the file are shuffled and
        the first ones (one line each) form the test set; train samples the other questions.
        """
        _check_count(n_train, "train examples")
        _check_count(n_test, "test examples")
        if self.path is None:
            return super().held_out(n_train, n_test, seed)
        rng = random.Random(seed)
        examples = self._load(self.path)
        if self.test_path is not None:
            test_pool = self._load(self.test_path)
            test = _sample(test_pool, n_test, rng, str(self.test_path))
            held = {e.prompt for e in test_pool}
        else:
            questions = list(dict.fromkeys(e.prompt for e in examples))
            rng.shuffle(questions)
            if n_test > len(questions) - (n_train > 0):
                raise ValueError(
                    f"{self.path} has {len(questions)} distinct questions; {n_test} test "
                    "questions leave none for train. Ask fewer or pass test_path"
                )
            held = set(questions[:n_test])
            first = {}
            for e in examples:
                if e.prompt in held:
                    first.setdefault(e.prompt, e)
            test = [first[q] for q in questions[:n_test]]
        pool = [e for e in examples if e.prompt not in held]
        return _sample(pool, n_train, rng, f"{self.path} (test questions removed)"), test

    def bucket(self, example: Example) -> str:
        """The number of thoughts of the gold rationale, e.g. "3" (``meta["steps"]``, else
        counted in the target)."""
        if "steps" in example.meta:
            return str(example.meta["steps"])
        return str(len(_THOUGHT.findall(example.target.partition(ANSWER_MARK)[0])))

    # The answer after "####" and the thoughts, as the module functions read and write them.
    answer_of = staticmethod(answer_of)
    thoughts = staticmethod(thoughts)
    join_thoughts = staticmethod(join_thoughts)

    def make_example(self, rng: random.Random) -> Example:
        """One generated problem drawn from `rng`."""
        n_steps = rng.randint(self.min_steps, self.max_steps)
        question, steps, answer = generate_word_problem(rng, n_steps)
        return Example(
            question,
            _make_target(steps, str(answer), self.cot),
            {"steps": len(steps), "answer": str(answer)},
        )

    def stream(self, rng: random.Random) -> Iterator[Example]:
        """Generated problems drawn from `rng` (``generate``/``held_out`` take distinct
        questions); a task reading files has no stream."""
        if self.path is not None:
            raise ValueError(f"{self!r} reads its examples from {self.path}; it has no stream")
        while True:
            yield self.make_example(rng)

    def _load(self, path: Path) -> list[Example]:
        if path not in self._files:
            self._files[path] = load_gsm_file(path, self.cot)
        return self._files[path]


def _sample(pool: list[Example], n: int, rng: random.Random, source: str) -> list[Example]:
    """`n` examples of `pool` chosen by `rng`, kept in pool order."""
    if n > len(pool):
        raise ValueError(f"{source} has {len(pool)} examples, {n} asked; ask fewer")
    return [pool[i] for i in sorted(rng.sample(range(len(pool)), n))]


def _check_count(n: int, what: str) -> None:
    if isinstance(n, bool) or not isinstance(n, int) or n < 0:
        raise ValueError(f"the number of {what} must be a non-negative int, got {n!r}")
