"""A seeded generator of templated GSM-style word problems with one thought per calculation.

A person starts with some items, gains, loses, multiplies or gives away a percentage of them,
and the question asks for the count, a fair share or the money from a sale (see the package
docstring, ``dlm.tasks.gsm``). All arithmetic is on integers below ``_CAP``.
"""

from __future__ import annotations

import random

__all__ = ["MAX_STEPS", "MIN_STEPS", "generate_word_problem"]

MIN_STEPS = 1
MAX_STEPS = 6

# Generator bounds: running counts stay below _CAP, so a thought is at most
# "<<9999*75/100=7499>>" (20 characters) and an answer at most 9999 * 15 (6 digits).
_CAP = 9_999
_MAX_THOUGHT_CHARS = 22
_MAX_ANSWER_CHARS = 6


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
