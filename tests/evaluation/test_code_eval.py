"""HumanEval through ``dlm eval code``'s harness: known-correct and known-wrong completions put in
place of the model give pass@1 = 1 and 0, hand-made counts give the estimator's exact values,
bad input is refused before any work, and the command runs end to end on a tiny model."""

from __future__ import annotations

import json
import math
import string

import pytest

from dlm.cli.main import main
from dlm.data.char_tokenizer import build_char_tokenizer
from dlm.errors import DlmUserError
from dlm.evaluation.code_eval import (
    check_pass_at,
    evaluate_humaneval,
    load_problems,
    pass_at_k,
    truncate_completion,
)
from helpers import tiny_model

PROBLEMS = load_problems(6)
BY_PROMPT = {p["prompt"]: p for p in PROBLEMS}


def _canonical(prompts: list[str]) -> list[str]:
    return [BY_PROMPT[p]["canonical_solution"] for p in prompts]


def _wrong(prompts: list[str]) -> list[str]:
    return ["    return None\n" for _ in prompts]


def test_the_canonical_solutions_pass_every_problem():
    report = evaluate_humaneval(PROBLEMS, _canonical, samples=2, ks=(1, 2), workers=2)
    assert report.pass_at == {1: 1.0, 2: 1.0}
    assert report.correct == {p["task_id"]: 2 for p in PROBLEMS}
    assert [r["passed"] for r in report.records] == [1.0] * 12
    assert all(r["fraction"] == 1.0 and r["status"] == "ok" for r in report.records)


def test_wrong_completions_pass_nothing():
    report = evaluate_humaneval(PROBLEMS, _wrong, samples=1, ks=(1,), workers=2)
    assert report.pass_at == {1: 0.0}
    assert set(report.correct.values()) == {0}
    assert all(r["passed"] == 0.0 and r["parses"] for r in report.records)


def _mixed(correct_per_problem: dict[str, int], samples: int):
    """A completer whose first c samples of each problem are right, the rest wrong."""
    seen: dict[str, int] = {}

    def complete(prompts: list[str]) -> list[str]:
        texts = []
        for prompt in prompts:
            problem = BY_PROMPT[prompt]
            index = seen.get(prompt, 0)
            seen[prompt] = index + 1
            right = index < correct_per_problem[problem["task_id"]]
            texts.append(problem["canonical_solution"] if right else "    return None\n")
        return texts

    return complete


def _by_formula(n: int, c: int, k: int) -> float:
    return 1.0 - math.comb(n - c, k) / math.comb(n, k)


def test_pass_at_k_is_the_unbiased_estimator_on_hand_made_counts():
    two = PROBLEMS[:2]
    counts = {two[0]["task_id"]: 2, two[1]["task_id"]: 0}
    report = evaluate_humaneval(two, _mixed(counts, 5), samples=5, ks=(1, 2, 5), workers=2)
    assert report.correct == counts
    expected = {k: (_by_formula(5, 2, k) + _by_formula(5, 0, k)) / 2 for k in (1, 2, 5)}
    assert report.pass_at == pytest.approx(expected)
    assert report.pass_at == pytest.approx({1: 0.2, 2: 0.35, 5: 0.5})  # 0.4, 0.7, 1 over 2


@pytest.mark.parametrize(("n", "c", "k", "value"), [(5, 2, 1, 0.4), (5, 2, 2, 0.7), (5, 2, 5, 1.0),
                                                    (10, 0, 3, 0.0), (3, 3, 1, 1.0)])
def test_pass_at_k_by_hand(n, c, k, value):
    assert pass_at_k(n, [c], k) == pytest.approx(value)


def test_text_after_the_function_is_cut_before_it_is_run():
    canonical = PROBLEMS[0]["canonical_solution"]
    trailing = canonical + "\n\ndef unrelated():\n    return 1 / 0\n\nprint(undefined_name)\n"
    assert truncate_completion(trailing) == canonical + "\n"
    report = evaluate_humaneval(PROBLEMS[:1], lambda ps: [trailing for _ in ps], samples=1)
    assert report.pass_at == {1: 1.0}


@pytest.mark.parametrize(("samples", "ks", "words"), [(1, (2,), "--k 2: pass@k needs"),
                                                       (5, (0, 1), "--k 0"),
                                                       (0, (1,), "--samples must be at least 1")])
def test_a_k_above_the_samples_is_refused(samples, ks, words):
    with pytest.raises(DlmUserError, match=words):
        check_pass_at(samples, ks)


def test_too_many_problems_is_refused():
    with pytest.raises(DlmUserError, match="HumanEval has 164 problems"):
        load_problems(500)


# ---------------------------------------------------------------------- the command
@pytest.fixture(scope="module")
def tiny_checkpoint(tmp_path_factory):
    tokenizer = build_char_tokenizer(string.printable)
    model = tiny_model("gpt2", vocab=len(tokenizer), max_positions=640)
    folder = tmp_path_factory.mktemp("code-model")
    model.save_pretrained(folder, tokenizer)
    return folder


@pytest.mark.parametrize(
    ("flags", "words"),
    [
        (["--samples", "0"], "--samples must be at least 1"),
        (["--samples", "2", "--k", "3"], "--k 3: pass@k needs 1 <= k <= --samples (2)"),
        (["--k", "one"], "--k takes whole numbers"),
        (["--problems", "999"], "HumanEval has 164 problems"),
        (["--timeout", "0"], "--timeout must be between"),
        (["--temperature", "-1"], "--temperature"),
    ],
)
def test_bad_flags_are_one_line_errors_before_any_work(tiny_checkpoint, tmp_path, capsys, flags,
                                                        words):
    out = tmp_path / "results.jsonl"
    code = main(["eval", "code", "--model", str(tiny_checkpoint), "--out", str(out), *flags])
    err = capsys.readouterr().err.strip()
    assert code == 2 and err.startswith("dlm eval code: error: ") and "\n" not in err
    assert words in err
    assert not out.exists()


def test_a_missing_model_folder_is_a_one_line_error(tmp_path, capsys):
    code = main(["eval", "code", "--model", str(tmp_path / "nope"), "--samples", "2"])
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert err == (
        f"dlm eval code: error: --model {tmp_path / 'nope'} is not a folder; "
        "give a checkpoint directory"
    )


def test_the_command_runs_end_to_end_on_a_tiny_model(tiny_checkpoint, tmp_path, capsys):
    out, summary = tmp_path / "results.jsonl", tmp_path / "summary.json"
    code = main([
        "eval", "code", "--model", str(tiny_checkpoint), "--samples", "2", "--problems", "2",
        "--max-new-tokens", "8", "--steps", "2", "--temperature", "0.7", "--seed", "0",
        "--workers", "2", "--out", str(out), "--json", str(summary), "--quiet",
    ])
    printed = capsys.readouterr().out
    assert code == 0
    assert "HumanEval: 2 problems x 2 samples" in printed and "pass@1:" in printed
    records = [json.loads(line) for line in out.read_text().splitlines()]
    assert [(r["task_id"], r["sample"]) for r in records] == [
        ("HumanEval/0", 0), ("HumanEval/0", 1), ("HumanEval/1", 0), ("HumanEval/1", 1)
    ]
    assert all(set(r) >= {"completion", "passed", "fraction", "status", "error"} for r in records)
    assert all(r["passed"] in (0.0, 1.0) and 0.0 <= r["fraction"] <= 1.0 for r in records)
    report = json.loads(summary.read_text())
    assert set(report["pass_at"]) == {"pass@1", "pass@2"}
    assert all(0.0 <= v <= 1.0 for v in report["pass_at"].values())
    assert (report["problems"], report["samples"]) == (2, 2)
    assert sum(report["correct"].values()) == sum(r["passed"] for r in records)
    settings = report["settings"]
    assert (settings["max_new_tokens"], settings["steps"], settings["temperature"]) == (8, 2, 0.7)
