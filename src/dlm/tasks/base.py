"""The one Task interface every problem family implements, and the distinct-examples helper.

A task is a problem family (Sudoku, Countdown, ...). It generates seeded examples offline as
(prompt, target) text pairs, names the tokenizer its text is written in, and checks a model's
answer by the rules of the problem rather than by string equality with one stored answer.
The data layer (`dlm.data`) turns examples into token ids: prompt + [SEP] stays clean, the
target + [EOS] + padding is the noisable region.

What the trainer, the evaluator and the CLI read from a task (``Task``):

- ``name``, ``tokenizer()``, ``max_answer_tokens`` (None when the task gives no bound);
- ``generate(n, seed)``: ``n`` distinct examples of the training distribution;
- ``held_out(n_train, n_test, seed)``: named (train, test) splits, no test example in train;
- ``verify(example, answer)``: the strict rule check;
- ``answer_of(text)``: the final answer a self-consistency vote counts;
- ``bucket(example)``: the label accuracy is broken down by (one bucket, ``"all"``, by default);
- ``render(prompt, answer)``: the answer in the task's native form for a person to read (a
  Sudoku grid, Countdown's equations one per line; the answer unchanged by default), the raw
  text again for an answer it cannot read;
- ``metrics``: name -> function(example, answer) -> float | bool, always holding the strict
  verifier as ``"verify"`` and each paper's own metric under its own name (listed in the
  task's module docstring); ``dlm eval --metric NAME`` reports any of them;
- ``slots``: None, or a function giving the target positions a model fills inside a pinned
  template (the rest of the target is fixed at sampling time and not noised in training).

Most generators draw from an endless seeded stream (``stream(rng)``) and keep the examples
whose ``distinct_key`` has not been seen; ``take_distinct`` is that loop, and the default
``generate`` and ``held_out`` are built on it.

A ``progress`` callback (``Progress``: called with the number of examples just taken, e.g. a
tqdm bar's ``update``) can follow a long generation: ``take_distinct`` and every task's
``generate`` and ``held_out`` take one (None, the default, costs nothing), and a task that
overrides them passes it on, so the counts it is called with add up to the examples made.
"""

from __future__ import annotations

import random
from abc import ABC, abstractmethod
from collections.abc import Callable, Hashable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, TypeVar

from transformers import PreTrainedTokenizerFast

from dlm.errors import DlmUserError

__all__ = [
    "Example",
    "Metric",
    "Progress",
    "Task",
    "take_distinct",
]

T = TypeVar("T")

#: A metric reads an example and an answer text; True/False or a share in [0, 1].
Metric = Callable[["Example", str], "float | bool"]
#: A progress callback: called with the number of examples just taken (a tqdm bar's update).
Progress = Callable[[int], object]


@dataclass(frozen=True)
class Example:
    """One problem instance: the clean prompt, one gold target, and task-specific metadata."""

    prompt: str
    target: str
    meta: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {"prompt": self.prompt, "target": self.target, "meta": dict(self.meta)}

    @classmethod
    def from_json(cls, record: dict[str, Any]) -> Example:
        missing = [k for k in ("prompt", "target") if k not in record]
        if missing:
            raise DlmUserError(
                f"an example record needs the keys 'prompt' and 'target'; this one lacks {missing}: {record!r:.200}"
            )
        return cls(str(record["prompt"]), str(record["target"]), dict(record.get("meta", {})))


def _count(n: object, part: str) -> int:
    if isinstance(n, bool) or not isinstance(n, int) or n < 0:
        raise DlmUserError(f"the number of {part} examples must be a non-negative int, got {n!r}")
    return n


def take_distinct(
    stream: Iterable[T],
    n_train: int,
    n_test: int = 0,
    *,
    key: Callable[[T], Hashable] | None = None,
    related: Callable[[T], Hashable | None] | None = None,
    test_first: bool = True,
    what: str = "examples",
    owner: str = "",
    max_repeats: int | None = 10_000,
    progress: Progress | None = None,
) -> tuple[list[T], list[T]]:
    """(train, test) from a seeded stream of items, no ``key`` taken twice.

    Items are read in stream order. With ``test_first`` (the default) the first ``n_test``
    fresh items form the test part and the next ``n_train`` the train part, so no test item
    reappears in train; without it train is filled first. An item whose ``key`` (the item
    itself by default) was taken before is skipped. ``related`` names what else the second
    part must not share with the first (a Sudoku's solution grid, a Boolean expression, an
    unordered operand pair): a second-part item whose ``related`` key (None: nothing) belongs
    to a first-part item is skipped too. ``take_distinct(stream, n)[0]`` is ``n`` distinct
    items.

    After ``max_repeats`` skipped items in a row (None: never) the stream is taken to have run
    out of distinct items and a ``DlmUserError`` names ``owner`` and ``what``. ``progress``
    (None: nothing) is called with 1 for every item taken.
    """
    n_train, n_test = _count(n_train, "train"), _count(n_test, "test")
    key_of = key if key is not None else (lambda item: item)  # type: ignore[assignment,return-value]
    train: list[T] = []
    test: list[T] = []
    first, second, n_first, n_second = (
        (test, train, n_test, n_train) if test_first else (train, test, n_train, n_test)
    )
    seen: set[Hashable] = set()
    first_related: set[Hashable] = set()
    items = iter(stream)
    repeats = 0
    while len(first) < n_first or len(second) < n_second:
        item = next(items)
        k = key_of(item)
        in_first = len(first) < n_first
        r = related(item) if related is not None else None
        if k in seen or (not in_first and r is not None and r in first_related):
            repeats += 1
            if max_repeats is not None and repeats > max_repeats:
                raise DlmUserError(_ran_out(owner, what, train, test, n_train, n_test))
            continue
        repeats = 0
        seen.add(k)
        if in_first:
            first.append(item)
            if r is not None:
                first_related.add(r)
        else:
            second.append(item)
        if progress is not None:
            progress(1)
    return train, test


def _ran_out(owner: str, what: str, train: list, test: list, n_train: int, n_test: int) -> str:
    who = f"{owner} found" if owner else "found"
    if n_test == 0:
        got = f"only {len(train)} distinct {what} of the {n_train} asked"
    else:
        got = (
            f"only {len(train)} train / {len(test)} test distinct {what} of the "
            f"{n_train} / {n_test} asked"
        )
    return f"{who} {got}; ask for fewer or widen the task's options"


class Task(ABC):
    """A problem family: seeded examples, a tokenizer, a strict verifier and its metrics.

    Subclasses set ``name`` and implement ``tokenizer`` and ``verify``; a task whose
    examples come from a seeded stream implements ``stream`` (and ``distinct_key``,
    ``related_key`` where the prompt is not what makes an example new) and gets ``generate``
    and ``held_out`` from here. A task with its own split rule overrides ``held_out``; an
    override takes ``progress`` too and tells it of each example made.
    """

    name: ClassVar[str]
    #: None, or a function (example) -> the target positions the model fills (a template).
    slots: Callable[[Example], list[int]] | None = None
    #: An upper bound on the answer's tokens ([EOS] included); None when the task has none.
    max_answer_tokens: int | None = None
    #: What the default generator's examples are called in its errors.
    unit: ClassVar[str] = "examples"
    #: Skipped duplicates in a row after which the default generator gives up (None: never).
    max_repeats: ClassVar[int | None] = 10_000

    def __repr__(self) -> str:
        options = ", ".join(f"{k}={v!r}" for k, v in vars(self).items() if not k.startswith("_"))
        return f"{type(self).__name__}({options})"

    @abstractmethod
    def tokenizer(self) -> PreTrainedTokenizerFast:
        """The tokenizer the task's text is written in (character-level for puzzles)."""

    @abstractmethod
    def verify(self, example: Example, answer: str) -> bool:
        """True when ``answer`` solves ``example.prompt`` by the rules of the problem."""

    # ---- generation ---------------------------------------------------------------------

    def stream(self, rng: random.Random) -> Iterator[Example]:
        """An endless stream of examples drawn from ``rng`` (duplicates allowed)."""
        raise NotImplementedError(
            f"task {self.name!r} draws no example stream; it must override generate and held_out"
        )

    def distinct_key(self, example: Example) -> Hashable:
        """What makes an example new to the default generator (the prompt by default)."""
        return example.prompt

    def related_key(self, example: Example) -> Hashable | None:
        """What a train example must not share with any test example (None: nothing more)."""
        return None

    def generate(self, n: int, seed: int, *, progress: Progress | None = None) -> list[Example]:
        """``n`` distinct examples, identical for identical (``n``, ``seed``, task options);
        ``progress`` (None: nothing) is told of each example as it is taken."""
        return self.held_out(n, 0, seed, progress=progress)[0]

    def held_out(
        self, n_train: int, n_test: int, seed: int, *, progress: Progress | None = None
    ) -> tuple[list[Example], list[Example]]:
        """(train, test) from ``seed``: distinct examples, no test example in train.

        The default takes test first from ``stream(random.Random(seed))`` and skips any later
        example whose ``distinct_key`` was taken or whose ``related_key`` is a test one's;
        ``progress`` (None: nothing) is told of each example as it is taken.
        """
        return take_distinct(
            self.stream(random.Random(seed)),
            n_train,
            n_test,
            key=self.distinct_key,
            related=self.related_key,
            what=self.unit,
            owner=repr(self),
            max_repeats=self.max_repeats,
            progress=progress,
        )

    # ---- reading answers ----------------------------------------------------------------

    def answer_of(self, text: str) -> str | None:
        """The final answer of ``text`` that a vote counts; by default the whole stripped text."""
        text = text.strip()
        return text or None

    def bucket(self, example: Example) -> str:
        """The label accuracy is broken down by; one bucket, ``"all"``, by default."""
        return "all"

    def render(self, prompt: str, answer: str) -> str:
        """``answer`` as a person reads it (``dlm generate`` prints this); by default unchanged.

        A task with a native form overrides it; an answer it cannot read comes back unchanged,
        and rendering never raises.
        """
        return answer

    @property
    def metrics(self) -> Mapping[str, Metric]:
        """name -> metric: the strict ``"verify"`` plus each paper metric of the task."""
        return {"verify": self.verify}
