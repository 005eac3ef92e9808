"""``GsmTask``: GSM8K-Aug files or generated word problems, split, verified, with thoughts."""

from __future__ import annotations

import random
from collections.abc import Iterator
from pathlib import Path

from transformers import PreTrainedTokenizerFast

from dlm.data.char_tokenizer import build_char_tokenizer
from dlm.errors import DlmUserError
from dlm.tasks.base import Example, Progress
from dlm.tasks.thoughts import ANSWER_MARK, ThoughtTask

from .format import (
    _THOUGHT,
    ALPHABET,
    _make_target,
    _number,
    answer_of,
    join_thoughts,
    load_gsm_file,
    thoughts,
)
from .generator import (
    _MAX_ANSWER_CHARS,
    _MAX_THOUGHT_CHARS,
    MAX_STEPS,
    MIN_STEPS,
    generate_word_problem,
)

__all__ = ["GsmTask"]


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
            raise DlmUserError(
                "test_path needs path (the train file) too; set path as well, or drop test_path"
            )
        if not isinstance(cot, bool):
            raise DlmUserError(f"cot must be True or False, got {cot!r}")
        for label, v in (("min_steps", min_steps), ("max_steps", max_steps)):
            if isinstance(v, bool) or not isinstance(v, int) or not MIN_STEPS <= v <= MAX_STEPS:
                raise DlmUserError(
                    f"{label} must be an int in [{MIN_STEPS}, {MAX_STEPS}], got {v!r}"
                )
        if min_steps > max_steps:
            raise DlmUserError(f"min_steps ({min_steps}) must not exceed max_steps ({max_steps})")
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

    def generate(self, n: int, seed: int, *, progress: Progress | None = None) -> list[Example]:
        """`n` examples, identical for identical seed and options.

        Generated: distinct questions. From `path`: a seeded sample of `n` lines, in file order
        (GSM8K-Aug repeats questions with different rationales, so these may repeat questions).
        ``progress`` (None: nothing) is told of each generated problem as it is taken, or of
        the sampled lines all at once.
        """
        _check_count(n, "examples")
        if self.path is not None:
            rng = random.Random(seed)
            return _report(_sample(self._load(self.path), n, rng, str(self.path)), progress)
        return super().generate(n, seed, progress=progress)

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

    def held_out(
        self, n_train: int, n_test: int, seed: int, *, progress: Progress | None = None
    ) -> tuple[list[Example], list[Example]]:
        """(train, test) with no test question in train.

        Generated: test first from the seeded stream, then train with distinct, unseen
        questions. With `test_path`: a seeded sample of each file, train lines whose question
        is in the test file dropped. With `path` only: questions of the file are shuffled and
        the first ones (one line each) form the test set; train samples the other questions.
        ``progress`` (None: nothing) is told of each generated problem as it is taken, or of
        each part's file lines once that part is sampled.
        """
        _check_count(n_train, "train examples")
        _check_count(n_test, "test examples")
        if self.path is None:
            return super().held_out(n_train, n_test, seed, progress=progress)
        rng = random.Random(seed)
        examples = self._load(self.path)
        if self.test_path is not None:
            test_pool = self._load(self.test_path)
            test = _report(_sample(test_pool, n_test, rng, str(self.test_path)), progress)
            held = {e.prompt for e in test_pool}
        else:
            questions = list(dict.fromkeys(e.prompt for e in examples))
            rng.shuffle(questions)
            if n_test > len(questions) - (n_train > 0):
                raise DlmUserError(
                    f"{self.path} has {len(questions)} distinct questions; {n_test} test "
                    "questions leave none for train. Ask fewer or pass test_path"
                )
            held = set(questions[:n_test])
            first = {}
            for e in examples:
                if e.prompt in held:
                    first.setdefault(e.prompt, e)
            test = _report([first[q] for q in questions[:n_test]], progress)
        pool = [e for e in examples if e.prompt not in held]
        train = _sample(pool, n_train, rng, f"{self.path} (test questions removed)")
        return _report(train, progress), test

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
        raise DlmUserError(f"{source} has {len(pool)} examples, {n} asked; ask fewer")
    return [pool[i] for i in sorted(rng.sample(range(len(pool)), n))]


def _report(examples: list[Example], progress: Progress | None) -> list[Example]:
    """`examples`, after telling `progress` (None: nothing) how many they are."""
    if progress is not None and examples:
        progress(len(examples))
    return examples


def _check_count(n: int, what: str) -> None:
    if isinstance(n, bool) or not isinstance(n, int) or n < 0:
        raise DlmUserError(f"the number of {what} must be a non-negative int, got {n!r}")
