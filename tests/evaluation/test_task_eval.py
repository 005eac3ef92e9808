"""Tests for task evaluation: per-bucket accuracy, self-consistency voting, multi-pass."""

from __future__ import annotations

from collections.abc import Sequence

import pytest
import torch

from dlm.data.char_tokenizer import EOS_ID, build_char_tokenizer
from dlm.errors import DlmUserError
from dlm.evaluation import bucket_accuracy, evaluate_task
from dlm.evaluation.multipass import multipass_generate
from dlm.evaluation.self_consistency import majority_vote
from dlm.sampling import GenerationOutput
from dlm.tasks import Example
from dlm.tasks.thoughts import ThoughtTask

ALPHABET = "0123456789+#"


class CountingTask(ThoughtTask):
    """Answers are 'digit+digit+...#sum'; thoughts split on '+', the answer after '#'."""

    name = "counting"
    max_answer_tokens = 8

    def tokenizer(self):
        return build_char_tokenizer(ALPHABET)

    def verify(self, example: Example, answer: str) -> bool:
        return self.answer_of(answer) == example.target.split("#")[1]

    def answer_of(self, text: str) -> str | None:
        return text.split("#", 1)[1] if "#" in text else None

    def bucket(self, example: Example) -> str:
        return f"len{len(example.prompt)}"

    def thoughts(self, target: str) -> list[str]:
        rationale, answer = target.split("#")
        return [*rationale.split("+"), f"#{answer}"]

    def join_thoughts(self, parts: Sequence[str]) -> str:
        body = [p for p in parts if not p.startswith("#")]
        tail = [p for p in parts if p.startswith("#")]
        return "+".join(body) + "".join(tail)

    def terms_right(self, example: Example, answer: str) -> float:
        """A second metric: the share of the gold rationale's terms the answer writes."""
        gold = example.target.split("#")[0].split("+")
        got = answer.split("#")[0].split("+")
        return sum(a == b for a, b in zip(gold, got)) / len(gold)

    @property
    def metrics(self):
        return {**super().metrics, "terms": self.terms_right}


@pytest.fixture(autouse=True)
def _scripted_sampler(monkeypatch):
    """Route ``dlm.sampling.generate`` to the stand-in models' own ``generate``."""
    import dlm.evaluation.multipass
    import dlm.evaluation.task_eval

    def generate(model, input_ids, attention_mask=None, **options):
        return model.generate(input_ids, attention_mask, **options)

    for module in (dlm.evaluation.multipass, dlm.evaluation.task_eval):
        monkeypatch.setattr(module, "generate", generate)


class ScriptedModel:
    """Stands in for a DiffusionLM: answers each prompt from a script, counting calls."""

    is_autoregressive = False
    generation_defaults: dict = {}

    def __init__(self, tokenizer, script):
        self.tokenizer = tokenizer
        self.script = script  # prompt text -> list of answers, used in turn
        self.calls = 0
        self.seen: list[list[str]] = []

    def generate(self, input_ids, attention_mask, *, max_new_tokens, **sampler):
        self.calls += 1
        prompts = []
        for row, mask in zip(input_ids.tolist(), attention_mask.tolist(), strict=True):
            ids = [t for t, m in zip(row, mask, strict=True) if m]
            prompts.append(self.tokenizer.decode(ids, skip_special_tokens=False))
        self.seen.append(prompts)
        rows = []
        for prompt in prompts:
            text = self.script[prompt].pop(0)
            ids = self.tokenizer(text)["input_ids"] + [EOS_ID]
            rows.append(ids + [0] * (max_new_tokens - len(ids)))
        generated = torch.tensor(rows)
        seq = torch.cat([input_ids, generated], 1)
        return GenerationOutput(seq, input_ids.shape[1], 5, 0.5, int((generated != 0).sum()))


def test_majority_vote_counts_final_answers_and_breaks_ties_by_order() -> None:
    task = CountingTask()
    assert majority_vote(["1+2#3", "2+2#4", "0+4#4"], task.answer_of) == "2+2#4"
    assert majority_vote(["1+2#3", "2+2#4"], task.answer_of) == "1+2#3"
    assert majority_vote(["garbage", "1#1", "x"], task.answer_of) == "1#1"
    assert majority_vote(["a", "b"], task.answer_of) == "a"
    with pytest.raises(ValueError):
        majority_vote([], task.answer_of)


def test_bucket_accuracy() -> None:
    task = CountingTask()
    examples = [Example("12", "1+2#3"), Example("123", "x#6"), Example("45", "4+5#9")]
    got = bucket_accuracy(task, examples, [True, False, False])
    assert got == {
        "len2": {"accuracy": 0.5, "correct": 1, "n": 2},
        "len3": {"accuracy": 0.0, "correct": 0, "n": 1},
    }


def test_self_consistency_votes_per_example() -> None:
    task = CountingTask()
    tok = task.tokenizer()
    examples = [Example("12", "1+2#3"), Example("45", "4+5#9")]
    script = {
        "12[SEP]": ["1+2#3", "1+1#2", "0+3#3"],  # 2 of 3 right; the vote is right
        "45[SEP]": ["4+5#8", "4+5#9", "4+4#8"],  # 1 of 3 right; the vote is wrong
    }
    model = ScriptedModel(tok, script)
    report = evaluate_task(
        model, tok, task, examples, max_new_tokens=8, samples=3, vote=True, temperature=0.7
    )
    assert model.calls == 1 and len(model.seen[0]) == 6  # k samples of every prompt, one batch
    assert report.accuracy == 0.5 and report.correct == 1
    assert report.sample_accuracy == pytest.approx(3 / 6)
    assert report.answers == ["1+2#3", "4+5#8"]
    assert report.buckets == {"len2": {"accuracy": 0.5, "correct": 1, "n": 2}}
    assert report.nfe == 5 and report.to_json()["vote"] is True
    assert report.metrics == {"verify": 0.5}  # the default metric is the accuracy itself
    assert report.bucket_metrics == {"len2": {"verify": 0.5}}


def test_named_metrics_are_scored_overall_and_per_bucket() -> None:
    task = CountingTask()
    tok = task.tokenizer()
    examples = [Example("12", "1+2#3"), Example("45", "4+5#9"), Example("678", "6+7+8#21")]
    script = {
        "12[SEP]": ["1+2#3", "1+1#2"],  # verify 1, 0; terms 1, 1/2
        "45[SEP]": ["4+5#8", "0+0#9"],  # verify 0, 1; terms 1, 0
        "678[SEP]": ["6+7+8#21", "6+0+0#2"],  # verify 1, 0; terms 1, 1/3
    }
    model = ScriptedModel(tok, {k: list(v) for k, v in script.items()})
    report = evaluate_task(
        model,
        tok,
        task,
        examples,
        max_new_tokens=10,
        samples=2,
        temperature=0.7,
        metrics=["terms", "verify", "terms"],
    )
    # Without a vote every sample is scored: per example the mean of its two samples.
    assert list(report.metrics) == ["terms", "verify"]
    assert report.metrics["verify"] == pytest.approx(report.accuracy) == pytest.approx(0.5)
    assert report.metrics["terms"] == pytest.approx((0.75 + 0.5 + 2 / 3) / 3)
    assert report.bucket_metrics == {
        "len2": {"terms": pytest.approx(0.625), "verify": pytest.approx(0.5)},
        "len3": {"terms": pytest.approx(2 / 3), "verify": pytest.approx(0.5)},
    }
    assert report.to_json()["bucket_metrics"] == report.bucket_metrics
    voted = evaluate_task(
        ScriptedModel(tok, {k: list(v) for k, v in script.items()}),
        tok,
        task,
        examples,
        max_new_tokens=10,
        samples=2,
        vote=True,
        temperature=0.7,
        metrics=["terms"],
    )
    # With a vote only the voted answer (here the first sample of each tie) is scored.
    assert voted.answers == ["1+2#3", "4+5#8", "6+7+8#21"]
    assert voted.metrics == {"terms": 1.0}


def test_an_unknown_metric_names_the_valid_ones_before_sampling() -> None:
    task = CountingTask()
    model = ScriptedModel(task.tokenizer(), {})
    examples = [Example("12", "1+2#3")]
    with pytest.raises(DlmUserError, match=r"no metric 'lenient'; its metrics: verify, terms"):
        evaluate_task(
            model, task.tokenizer(), task, examples, max_new_tokens=8, metrics=["lenient"]
        )
    assert model.calls == 0


def test_sampling_options_are_checked() -> None:
    task = CountingTask()
    tok = task.tokenizer()
    model = ScriptedModel(tok, {})
    examples = [Example("12", "1+2#3")]
    with pytest.raises(ValueError, match="temperature"):
        evaluate_task(model, tok, task, examples, max_new_tokens=8, samples=3)
    with pytest.raises(ValueError, match="several samples"):
        evaluate_task(model, tok, task, examples, max_new_tokens=8, vote=True)


def test_multipass_generates_one_thought_per_pass_until_the_answer() -> None:
    task = CountingTask()
    tok = task.tokenizer()
    # Prompts as the model sees them: question [SEP] thoughts so far [SEP], as in training.
    script = {
        "12[SEP][SEP]": ["1"],
        "12[SEP]1[SEP]": ["2"],
        "12[SEP]1+2[SEP]": ["#3"],
        "9[SEP][SEP]": ["#9"],
    }
    model = ScriptedModel(tok, script)
    result = multipass_generate(model, tok, task, ["12", "9"], max_thought_tokens=4)
    assert result.answers == ["1+2#3", "#9"]
    assert result.passes == [3, 1]
    # Finished rows leave the batch: 2 rows, then 1, then 1.
    assert [len(batch) for batch in model.seen] == [2, 1, 1]
    assert result.nfe == 15

    capped = multipass_generate(
        ScriptedModel(tok, {"12[SEP][SEP]": ["1"], "12[SEP]1[SEP]": ["2"]}),
        tok,
        task,
        ["12"],
        max_thought_tokens=4,
        max_passes=2,
    )
    assert capped.answers == ["1+2"] and capped.passes == [2]
    assert not task.verify(Example("12", "1+2#3"), capped.answers[0])

    # A model whose positions run out: the third pass's prompt (7 ids) leaves no room, so
    # decoding stops after two passes instead of asking for more positions than it has.
    full = ScriptedModel(
        tok, {"12[SEP][SEP]": ["1"], "12[SEP]1[SEP]": ["2"], "12[SEP]1+2[SEP]": ["#3"]}
    )
    full.max_positions = len(tok.encode("12[SEP]1+2[SEP]", add_special_tokens=False))
    short = multipass_generate(full, tok, task, ["12"], max_thought_tokens=4)
    assert short.passes == [2] and short.answers == ["1+2"]


def test_multipass_needs_a_task_with_thoughts() -> None:
    class Plain:
        name = "plain"

    with pytest.raises(ValueError, match="no chain of thought"):
        multipass_generate(None, None, Plain(), ["x"], max_thought_tokens=2)


def test_template_tasks_are_infilled_and_scored_on_the_filled_canvas() -> None:
    from dlm.tasks import SumsTask

    task = SumsTask(problems=3, digits=2, context=1)
    tok = task.tokenizer()
    pages = task.generate(4, seed=0)
    golds = {p.prompt: tok.encode(p.target, add_special_tokens=False) for p in pages}

    class Filler:
        """Fills the free positions of the canvas with the gold digits, except in page 0."""

        is_autoregressive = False
        generation_defaults: dict = {}

        def generate(self, input_ids, attention_mask, *, max_new_tokens, fixed, **sampler):
            assert fixed.shape == (4, max_new_tokens) and (fixed == -1).sum() == 4 * 9
            rows = []
            for ids, mask, pinned in zip(input_ids, attention_mask, fixed, strict=True):
                prompt = tok.decode(ids[mask.bool()].tolist(), skip_special_tokens=True)
                gold = torch.tensor(golds[prompt])
                filled = torch.where(pinned == -1, gold, pinned)
                if prompt == pages[0].prompt:
                    filled[task.slots(pages[0])[0]] = tok.convert_tokens_to_ids("9")
                rows.append(filled)
            generated = torch.stack(rows)
            seq = torch.cat([input_ids, generated], 1)
            return GenerationOutput(seq, input_ids.shape[1], 9, 1.0, 36)

    assert pages[0].target[task.slots(pages[0])[0]] in "01"  # a carry digit: "9" is wrong
    report = evaluate_task(
        Filler(), tok, task, pages, max_new_tokens=1, metrics=["verify", "sum_accuracy"]
    )
    assert report.correct == 3 and report.accuracy == 0.75
    assert report.answers[1] == pages[1].target
    # Page 0 has one of its three sums wrong: the benchmark's finer metric gives it 2/3.
    assert report.metrics == {"verify": 0.75, "sum_accuracy": pytest.approx((2 / 3 + 3) / 4)}
    assert list(report.bucket_metrics) == ["3x2"]
