"""Code rewards on hand-made completions: correct, partly correct, wrong, non-parsing,
looping, cheating; exact pass flags and fractions."""

from __future__ import annotations

import pytest

from dlm.errors import DlmUserError
from dlm.rewards.code import (
    CodeTask,
    CodeTaskError,
    extract_code,
    score_completion,
    score_completions,
    unit_test_reward,
)
from dlm.sandbox import SandboxLimits, SandboxPool, Status
from dlm.tasks import Example

ADD = CodeTask(
    tests=["assert add(1, 2) == 3", "assert add(-1, 1) == 0", "assert add(0, 0) == 0",
           "assert add(10, 5) == 15"],
    entry_point="add",
    per_test_seconds=0.3,
)
CHECK = CodeTask(
    prefix="def square(x):\n    \"\"\"x squared.\"\"\"\n",
    test_program=(
        "METADATA = {}\n\n"
        "def check(candidate):\n"
        "    assert candidate(2) == 4\n"
        "    assert candidate(-3) == 9\n"
        "    assert candidate(0) == 0\n"
        "    assert candidate(1) == 1\n"
    ),
    entry_point="square",
    per_test_seconds=0.3,
)
FAST = SandboxLimits(wall_seconds=4, cpu_seconds=2)


def _score(completion: str, task: CodeTask):
    return score_completion(completion, task, limits=FAST)


@pytest.mark.parametrize(
    ("completion", "passed", "fraction"),
    [
        ("def add(a, b):\n    return a + b\n", 1.0, 1.0),
        ("def add(a, b):\n    return a + b if a >= 0 else a\n", 0.0, 0.75),  # add(-1, 1) fails
        ("def add(a, b):\n    return a * b\n", 0.0, 0.25),  # only 0 * 0 == 0 holds
        ("def add(a, b):\n    return a - b\n", 0.0, 0.25),
        ("def plus(a, b):\n    return a + b\n", 0.0, 0.0),  # NameError in every test
    ],
)
def test_snippet_tests_give_exact_rewards(completion, passed, fraction):
    reward = _score(completion, ADD)
    assert (reward.passed, reward.fraction, reward.tests_total) == (passed, fraction, 4)
    assert reward.tests_passed == int(fraction * 4)
    assert reward.parses and reward.status is Status.OK


def test_the_entry_point_check():
    assert _score("def add(a, b):\n    return a + b\n", ADD).defines_entry_point is True
    assert _score("def plus(a, b):\n    return a + b\n", ADD).defines_entry_point is False
    assert _score("add = lambda a, b: a + b\n", ADD).defines_entry_point is True
    assert _score("x = 1", CodeTask(tests=["assert x == 1"])).defines_entry_point is None


def test_a_completion_that_does_not_parse_scores_zero_without_running():
    reward = _score("def add(a, b)\n    return a + b\n", ADD)
    assert (reward.passed, reward.fraction, reward.tests_passed, reward.tests_total) == (0, 0, 0, 4)
    assert reward.parses is False and reward.defines_entry_point is False
    assert reward.error.startswith("SyntaxError") and reward.seconds == 0.0


def test_a_loop_on_one_input_fails_that_test_only():
    looping = "def add(a, b):\n    while a < 0:\n        pass\n    return a + b\n"
    reward = _score(looping, ADD)
    assert (reward.passed, reward.fraction) == (0.0, 0.75)
    assert reward.status is Status.OK  # the per-test alarm stopped the loop; the rest ran


def test_a_loop_at_import_time_is_stopped_by_the_sandbox():
    reward = score_completion("while True:\n    pass\n", ADD,
                              limits=SandboxLimits(wall_seconds=1, cpu_seconds=1))
    assert (reward.passed, reward.fraction) == (0.0, 0.0)
    assert reward.status in (Status.ERROR, Status.TIMEOUT, Status.CPU_LIMIT)


@pytest.mark.parametrize(
    "cheat",
    [
        "import sys\nsys.exit(0)\n",  # leave before the tests run
        "import os\nos._exit(0)\n",
        "print('pass 0 pass')\nimport sys\nsys.exit(0)\n",  # fake verdicts, without the token
        "def add(a, b):\n    raise SystemExit(0)\n",
    ],
)
def test_leaving_early_or_faking_verdicts_earns_nothing(cheat):
    reward = _score(cheat, ADD)
    assert (reward.passed, reward.fraction) == (0.0, 0.0)


def test_prints_of_the_program_do_not_disturb_the_verdicts():
    noisy = "print('pass')\ndef add(a, b):\n    print('adding', a, b)\n    return a + b\n"
    assert _score(noisy, ADD).passed == 1.0


def test_a_check_program_counts_each_assert_of_check():
    right = _score("    return x * x\n", CHECK)
    assert (right.passed, right.fraction, right.tests_passed) == (1.0, 1.0, 4)
    abs_value = _score("    return abs(x)\n", CHECK)  # 2, 3, 0, 1: only 0 and 1 hold
    assert (abs_value.passed, abs_value.fraction, abs_value.tests_total) == (0.0, 0.5, 4)
    doubled = _score("    return 2 * x\n", CHECK)  # 4 == 4 and 0 == 0
    assert (doubled.passed, doubled.fraction) == (0.0, 0.5)
    assert doubled.defines_entry_point is True


def test_a_check_with_asserts_in_a_loop_counts_as_one_test():
    task = CodeTask(
        test_program="def check(f):\n    for x in range(5):\n        assert f(x) == x + 1\n",
        entry_point="inc",
    )
    assert (_score("def inc(x):\n    return x + 1\n", task).fraction) == 1.0
    wrong = _score("def inc(x):\n    return x + (x < 3)\n", task)
    assert (wrong.passed, wrong.fraction, wrong.tests_total) == (0.0, 0.0, 1)


def test_snippets_and_a_check_program_together():
    task = CodeTask(tests=["assert square(3) == 9"], test_program=CHECK.test_program,
                    entry_point="square", prefix=CHECK.prefix)
    reward = _score("    return x ** 2\n", task)
    assert (reward.passed, reward.tests_passed, reward.tests_total) == (1.0, 5, 5)


def test_code_is_taken_from_a_python_fence():
    completion = "Here is my solution:\n```python\ndef add(a, b):\n    return a + b\n```\nDone."
    reward = _score(completion, ADD)
    assert (reward.passed, reward.fenced) == (1.0, True)
    assert _score("def add(a, b):\n    return a + b\n", ADD).fenced is False


@pytest.mark.parametrize(
    ("text", "code", "fenced"),
    [
        ("```py\nx = 1\n```", "x = 1\n", True),
        ("```\ny = 2\n```\n```python\nx = 1\n```", "x = 1\n", True),  # python first
        ("```bash\nls\n```\n```\ny = 2\n```", "y = 2\n", True),
        ("```python\nx = 1\n", "x = 1\n", True),  # unclosed: to the end
        ("x = 1\n", "x = 1\n", False),
    ],
)
def test_extract_code(text, code, fenced):
    assert extract_code(text) == (code, fenced)


def test_the_batch_api_keeps_order_through_a_pool():
    completions = [
        "def add(a, b):\n    return a + b\n",
        "def add(a, b)\n",
        "def add(a, b):\n    return a * b\n",
        "def add(a, b):\n    return b + a\n",
    ]
    with SandboxPool(workers=2) as pool:
        rewards = score_completions(completions, [ADD] * 4, pool=pool, limits=FAST)
    assert [r.passed for r in rewards] == [1.0, 0.0, 0.0, 1.0]
    assert [r.fraction for r in rewards] == [1.0, 0.0, 0.25, 1.0]
    assert [r.parses for r in rewards] == [True, False, True, True]


def test_the_rl_reward_reads_each_examples_task_from_its_meta():
    meta = {"tests": list(ADD.tests), "entry_point": "add"}
    examples = [Example("write add", "", meta)] * 2
    answers = ["def add(a, b):\n    return a + b\n", "def add(a, b):\n    return a - b\n"]
    assert unit_test_reward("passed", limits=FAST)(examples, answers) == [1.0, 0.0]
    assert unit_test_reward("fraction", limits=FAST)(examples, answers) == [1.0, 0.25]


@pytest.mark.parametrize(
    ("make", "words"),
    [
        (lambda: CodeTask(), "needs tests"),
        (lambda: CodeTask(test_program="def check(c):\n    pass\n"), "needs the entry_point"),
        (lambda: CodeTask(tests=["assert 1"], per_test_seconds=0), "per_test_seconds"),
        (lambda: score_completion("x", CodeTask(test_program="x = 1", entry_point="f")),
         "defines no check"),
        (lambda: score_completions(["a", "b"], [ADD]), "2 completions for 1 tasks"),
        (lambda: unit_test_reward("accuracy"), "'passed' or 'fraction'"),
    ],
)
def test_bad_tasks_are_one_line_errors(make, words):
    with pytest.raises(CodeTaskError, match=words) as caught:
        make()
    assert isinstance(caught.value, DlmUserError)
