"""A page of sums with the answers left blank: long infilling with local dependencies.

The sampler benchmark needs a model trained here that writes long answers well. This task
writes ``problems`` additions of two ``digits``-digit numbers inline, each answer right after
its ``=`` as ``digits + 1`` digits (leading zero kept), and leaves the answers blank::

    prompt  "407+281=0688;630+552=1182;"          ``context`` solved sums (the format)
    target  "123+456=0579;815+309=1124;..."        ``problems`` sums; their answers are slots

Only the answer digits (the *slots*) are noisable in training, and at sampling time the rest of
the target is pinned (``fixed``): generation is infilling of ``problems x (digits + 1)`` tokens
(64 sums of 3-digit numbers: 256 tokens). Each answer digit depends on the operand digits next
to it and on the carry, which ties the digits of one answer together: a sampler that commits
many digits at once is right where the model is sure and wrong where it guesses a carry.

``verify`` needs every sum right; ``sum_accuracy`` (the benchmark's metric) is the share of sums
right; both recompute the sums from the operands written in the answer's own template.

Metrics (``task.metrics``, ``dlm eval --metric NAME``): ``verify`` (every sum right) and
``sum_accuracy`` (the share of sums right).
"""

from __future__ import annotations

import random
from collections.abc import Mapping

from transformers import PreTrainedTokenizerFast

from dlm.data.char_tokenizer import build_char_tokenizer
from dlm.errors import DlmUserError
from dlm.tasks.base import Example, Metric, Progress, Task

__all__ = ["SumsTask"]

ALPHABET = "0123456789+=;"


class SumsTask(Task):
    """``problems`` inline sums of ``digits``-digit numbers; the answers are the slots."""

    name = "sums"

    def __init__(self, problems: int = 64, digits: int = 3, context: int = 2) -> None:
        for key, value, low in (
            ("problems", problems, 1),
            ("digits", digits, 1),
            ("context", context, 0),
        ):
            if not isinstance(value, int) or value < low:
                raise DlmUserError(f"{key} must be an integer >= {low}; got {value!r}")
        self.problems, self.digits, self.context = problems, digits, context

    @property
    def width(self) -> int:
        """Characters of one written sum: ``a+b=s;``."""
        return 2 * self.digits + 1 + 1 + (self.digits + 1) + 1

    @property
    def max_answer_tokens(self) -> int:
        """The whole template (answers are filled inside it)."""
        return self.problems * self.width

    def tokenizer(self) -> PreTrainedTokenizerFast:
        return build_char_tokenizer(ALPHABET)

    def _sum(self, rng: random.Random) -> str:
        a, b = (rng.randrange(10 ** (self.digits - 1), 10**self.digits) for _ in range(2))
        return f"{a}+{b}={str(a + b).zfill(self.digits + 1)};"

    def generate(self, n: int, seed: int, *, progress: Progress | None = None) -> list[Example]:
        """``n`` pages from ``seed``; pages repeat with probability ~0 (random sums), so
        nothing is done to keep them distinct. ``progress`` (None: nothing) is told of each
        page as it is written."""
        rng = random.Random(seed)
        out = []
        for _ in range(n):
            prompt = "".join(self._sum(rng) for _ in range(self.context))
            target = "".join(self._sum(rng) for _ in range(self.problems))
            out.append(Example(prompt, target))
            if progress is not None:
                progress(1)
        return out

    def held_out(
        self, n_train: int, n_test: int, seed: int, *, progress: Progress | None = None
    ) -> tuple[list[Example], list[Example]]:
        """Train and test pages from one stream; pages repeat with probability ~0 (64 random
        sums). ``progress`` (None: nothing) is told of each page as it is written."""
        pages = self.generate(n_train + n_test, seed, progress=progress)
        return pages[:n_train], pages[n_train:]

    def slots(self, example: Example) -> list[int]:
        """Positions (characters = tokens) of the answer digits within the target."""
        start = 2 * self.digits + 2
        return [
            k * self.width + start + i for k in range(self.problems) for i in range(self.digits + 1)
        ]

    def _parts(self, text: str) -> list[str]:
        text = text.strip()
        return [text[k * self.width : (k + 1) * self.width] for k in range(self.problems)]

    def _right(self, part: str) -> bool:
        head, eq, answer = part.rstrip(";").partition("=")
        a, plus, b = head.partition("+")
        if not (eq and plus and a.isdigit() and b.isdigit() and answer.isdigit()):
            return False
        return answer == str(int(a) + int(b)).zfill(self.digits + 1)

    def sum_accuracy(self, example: Example, answer: str) -> float:
        """Share of the page's sums that ``answer`` (the filled template) gets right."""
        if len(answer.strip()) != len(example.target):
            return 0.0
        return sum(self._right(p) for p in self._parts(answer)) / self.problems

    def verify(self, example: Example, answer: str) -> bool:
        template = [c for i, c in enumerate(example.target) if i not in set(self.slots(example))]
        got = answer.strip()
        kept = [c for i, c in enumerate(got) if i not in set(self.slots(example))]
        return template == kept and self.sum_accuracy(example, got) == 1.0

    def bucket(self, example: Example) -> str:
        return f"{self.problems}x{self.digits}"

    @property
    def metrics(self) -> Mapping[str, Metric]:
        return {**super().metrics, "sum_accuracy": self.sum_accuracy}
