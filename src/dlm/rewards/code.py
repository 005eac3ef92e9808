"""Code rewards: the unit-test pass rate of a completion, run in the sandbox.

A ``CodeTask`` says what a completion is checked against: ``tests``, a list of snippets (each
usually one ``assert``), and/or ``test_program``, a HumanEval-style program defining
``check(candidate)``, called with the function named ``entry_point``. ``prefix`` is code the
completion continues (HumanEval's prompt: the signature and docstring); the program is
``prefix + code``. ``code`` is the completion itself, or the first fenced block in it
(```` ```python ```` / ```` ```py ```` / a bare fence) when it has one and ``fences`` is on.

``score_completion`` runs one completion; ``score_completions`` runs many through a
``SandboxPool``. Each gives a ``CodeReward``:

* ``passed``: 1.0 when every test passed and the harness ran to its end, else 0.0;
* ``fraction``: the share of tests that passed. The snippets count one each; a
  ``check(candidate)`` counts each ``assert`` directly in its body (rewritten so that a failed
  one does not stop the rest), or 1 when its asserts sit in loops or branches;
* ``parses`` (``ast.parse`` accepts the program), ``defines_entry_point`` (a top-level
  function, class or assignment of that name; None when no entry point is named) and
  ``fenced`` (the code came from a fence): the format checks;
* the sandbox's ``status`` and the first line of the error, to see why a completion failed.

The harness runs in the sandbox after the program, in the same process: each test under its
own ``per_test_seconds`` alarm (a loop that never ends fails that test and the others still
run; the sandbox's wall and CPU limits bound the whole), its verdicts written to stdout with a
random token per run, while the program's own prints go to stderr. A program that exits
early, kills itself or prints fake verdicts without the token earns nothing. A program that
reads the harness (``main.py``) could find the token: this guards against accidents and
shortcuts, not against a program written to defeat it.
"""

from __future__ import annotations

import ast
import re
import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from dlm.errors import DlmUserError
from dlm.sandbox import SandboxJob, SandboxLimits, SandboxPool, SandboxResult, Status, run_python
from dlm.tasks import Example

from .tasks import RewardFn

__all__ = [
    "CodeReward",
    "CodeTask",
    "CodeTaskError",
    "extract_code",
    "score_completion",
    "score_completions",
    "unit_test_reward",
]

#: What a test harness gets unless told otherwise: small, since tests are quick.
DEFAULT_LIMITS = SandboxLimits(wall_seconds=10, cpu_seconds=5, memory_mb=512)
_FENCE = re.compile(r"```[ \t]*([A-Za-z0-9_+-]*)[^\n]*\n(.*?)(?:```|\Z)", re.DOTALL)
_PYTHON_TAGS = ("python", "py", "python3")


class CodeTaskError(DlmUserError):
    """A code task that cannot be run (no tests, a test program without ``check``...)."""


@dataclass(frozen=True)
class CodeTask:
    """What a completion is checked against (see the module docstring)."""

    tests: Sequence[str] = ()
    test_program: str | None = None
    entry_point: str | None = None
    prefix: str = ""
    per_test_seconds: float = 3.0
    fences: bool = True

    def __post_init__(self) -> None:
        if not self.tests and self.test_program is None:
            raise CodeTaskError("a code task needs tests (assert snippets) or a test_program")
        if self.test_program is not None and not self.entry_point:
            raise CodeTaskError("a test_program's check(candidate) needs the entry_point to call")
        if not 0 < self.per_test_seconds <= 3600:
            raise CodeTaskError(
                f"per_test_seconds must be in (0, 3600]; got {self.per_test_seconds}"
            )

    @classmethod
    def from_meta(cls, meta: dict[str, Any]) -> CodeTask:
        """From an ``Example``'s meta: ``tests`` and/or ``test`` (a check program),
        ``entry_point``, ``prefix``."""
        return cls(
            tests=tuple(meta.get("tests", ())),
            test_program=meta.get("test"),
            entry_point=meta.get("entry_point"),
            prefix=meta.get("prefix", ""),
        )


@dataclass(frozen=True)
class CodeReward:
    """One completion's verdict (see the module docstring)."""

    passed: float
    fraction: float
    tests_passed: int
    tests_total: int
    parses: bool
    defines_entry_point: bool | None
    fenced: bool
    status: Status
    error: str = ""
    seconds: float = 0.0

    def to_json(self) -> dict[str, Any]:
        return {
            "passed": self.passed,
            "fraction": self.fraction,
            "tests_passed": self.tests_passed,
            "tests_total": self.tests_total,
            "parses": self.parses,
            "defines_entry_point": self.defines_entry_point,
            "fenced": self.fenced,
            "status": str(self.status),
            "error": self.error,
            "seconds": self.seconds,
        }


# ---------------------------------------------------------------------- format
def extract_code(completion: str) -> tuple[str, bool]:
    """The code of a completion and whether it came from a fence: the first ``python`` (or
    ``py``) fenced block, else the first untagged one, else the whole text. An unclosed
    fence runs to the end."""
    blocks = [(tag.lower(), body) for tag, body in _FENCE.findall(completion)]
    for wanted in (_PYTHON_TAGS, ("",)):
        for tag, body in blocks:
            if tag in wanted:
                return body, True
    return completion, False


def _parses(program: str) -> ast.Module | None:
    try:
        return ast.parse(program)
    except (SyntaxError, ValueError):
        return None


def _defines(tree: ast.Module, name: str) -> bool:
    """Whether ``tree`` binds ``name`` at top level (def, class, assignment, import)."""
    return any(name in _bound_names(node) for node in tree.body)


def _bound_names(node: ast.stmt) -> set[str]:
    if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
        return {node.name}
    if isinstance(node, (ast.Assign, ast.AnnAssign)):
        targets = node.targets if isinstance(node, ast.Assign) else [node.target]
        return {t.id for t in targets if isinstance(t, ast.Name)}
    if isinstance(node, (ast.Import, ast.ImportFrom)):
        return {a.asname or a.name.split(".")[0] for a in node.names}
    return set()


# ---------------------------------------------------------------------- the harness
def _split_check(test_program: str, first_index: int = 0) -> tuple[str, int]:
    """``test_program`` with each assert directly in ``check``'s body rewritten to record its
    verdict (as test ``first_index``, the next...) and go on, and how many there are (0: the
    program is left as it is)."""
    tree = _parses(test_program)
    if tree is None:
        raise CodeTaskError("the test_program does not parse")
    check = next(
        (n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == "check"), None
    )
    if check is None:
        raise CodeTaskError("the test_program defines no check(candidate) function")
    count = 0
    body: list[ast.stmt] = []
    for statement in check.body:
        if isinstance(statement, ast.Assert):
            thunk = ast.Lambda(args=_no_arguments(), body=statement.test)
            index = ast.Constant(first_index + count)
            call = ast.Call(ast.Name("__dlm_assert", ast.Load()), [index, thunk], [])
            body.append(ast.copy_location(ast.Expr(call), statement))
            count += 1
        else:
            body.append(statement)
    check.body = body
    return ast.unparse(ast.fix_missing_locations(tree)), count


def _no_arguments() -> ast.arguments:
    return ast.arguments(posonlyargs=[], args=[], kwonlyargs=[], kw_defaults=[], defaults=[])


_HARNESS = '''\
import os as __dlm_os, signal as __dlm_signal, sys as __dlm_sys
__DLM_TOKEN = {token!r}
__dlm_sys.stdout = __dlm_sys.stderr  # the program's prints; stdout carries the verdicts


class __DlmTestTimeout(BaseException):
    pass


def __dlm_alarm(*_):
    raise __DlmTestTimeout("test took longer than {seconds} s")


__dlm_signal.signal(__dlm_signal.SIGALRM, __dlm_alarm)


def __dlm_say(*words):
    __dlm_os.write(1, (" ".join([__DLM_TOKEN, *map(str, words)]) + "\\n").encode())


def __dlm_run(index, thunk):
    __dlm_signal.setitimer(__dlm_signal.ITIMER_REAL, {seconds})
    try:
        ok = thunk()
    except BaseException as error:
        __dlm_signal.setitimer(__dlm_signal.ITIMER_REAL, 0)
        __dlm_say(index, "fail", type(error).__name__)
        return False
    __dlm_signal.setitimer(__dlm_signal.ITIMER_REAL, 0)
    __dlm_say(index, "pass" if ok is not False else "fail")
    return ok is not False


def __dlm_assert(index, thunk):
    __dlm_run(index, lambda: bool(thunk()))


__dlm_namespace = {{"__name__": "solution", "__builtins__": __builtins__,
                    "__dlm_assert": __dlm_assert}}
__dlm_signal.setitimer(__dlm_signal.ITIMER_REAL, {seconds})
try:
    exec(compile({program!r}, "solution.py", "exec"), __dlm_namespace)
finally:
    __dlm_signal.setitimer(__dlm_signal.ITIMER_REAL, 0)
__dlm_say("loaded")
'''
_SNIPPET = (
    '__dlm_run({index}, lambda: exec(compile({code!r}, "test_{index}.py", "exec"), '
    "__dlm_namespace))\n"
)
_CHECK = '''\
exec(compile({test_program!r}, "test.py", "exec"), __dlm_namespace)
if __dlm_run({index}, lambda: __dlm_namespace["check"](__dlm_namespace[{entry_point!r}])):
    __dlm_say("check_done")
'''


@dataclass(frozen=True)
class _Harness:
    """One completion's harness program, its token, and its test units: the snippets first,
    then (with a test program) the asserts split out of ``check``, or the check call itself."""

    source: str
    token: str
    snippets: int
    check_asserts: int = 0
    has_check: bool = False

    @property
    def total(self) -> int:
        return self.snippets + (max(self.check_asserts, 1) if self.has_check else 0)


def _harness(program: str, task: CodeTask) -> _Harness:
    token = secrets.token_hex(12)
    seconds = task.per_test_seconds
    parts = [_HARNESS.format(token=token, seconds=seconds, program=program)]
    for index, code in enumerate(task.tests):
        parts.append(_SNIPPET.format(index=index, code=code))
    snippets = len(task.tests)
    if task.test_program is None:
        return _Harness("".join(parts), token, snippets)
    split, asserts = _split_check(task.test_program, first_index=snippets)
    check_call = snippets + asserts  # its verdict counts only when check has no split asserts
    parts.append(_CHECK.format(test_program=split, index=check_call, entry_point=task.entry_point))
    return _Harness("".join(parts), token, snippets, asserts, has_check=True)


def _units(task: CodeTask) -> int:
    """How many test units ``task`` has (what ``_harness`` would count)."""
    if task.test_program is None:
        return len(task.tests)
    return len(task.tests) + max(_split_check(task.test_program)[1], 1)


def _verdicts(result: SandboxResult, harness: _Harness) -> tuple[dict[int, bool], bool]:
    """Each test unit's verdict (pass True) and whether the check ran to its end."""
    verdicts: dict[int, bool] = {}
    check_done = False
    for line in result.stdout.splitlines():
        words = line.split()
        if len(words) < 2 or words[0] != harness.token:
            continue
        if words[1] == "check_done":
            check_done = True
        elif words[1].isdigit() and len(words) >= 3:
            verdicts.setdefault(int(words[1]), words[2] == "pass")
    return verdicts, check_done


def _count_passed(harness: _Harness, verdicts: dict[int, bool], check_done: bool) -> int:
    passed = sum(verdicts.get(i, False) for i in range(harness.snippets))
    if not harness.has_check:
        return passed
    if harness.check_asserts:  # each split assert counts once
        asserts = range(harness.snippets, harness.snippets + harness.check_asserts)
        return passed + sum(verdicts.get(i, False) for i in asserts)
    return passed + int(check_done)


def _first_error(result: SandboxResult) -> str:
    if result.status is Status.OK:
        return ""
    lines = [line for line in result.stderr.strip().splitlines() if line.strip()]
    return (lines[-1] if lines else str(result.status))[:300]


# ---------------------------------------------------------------------- scoring
@dataclass(frozen=True)
class _Prepared:
    """A completion ready to run (``job`` None: nothing to run, it does not parse)."""

    harness: _Harness | None
    job: SandboxJob | None
    parses: bool
    defines_entry_point: bool | None
    fenced: bool


def _prepare(completion: str, task: CodeTask, limits: SandboxLimits) -> _Prepared:
    code, fenced = extract_code(completion) if task.fences else (completion, False)
    program = task.prefix + code
    tree = _parses(program)
    defines = None
    if task.entry_point:
        defines = tree is not None and _defines(tree, task.entry_point)
    if tree is None:
        return _Prepared(None, None, False, defines, fenced)
    harness = _harness(program, task)
    return _Prepared(harness, SandboxJob(harness.source, limits=limits), True, defines, fenced)


def _reward(prepared: _Prepared, result: SandboxResult | None, task: CodeTask) -> CodeReward:
    if prepared.harness is None or result is None:
        return CodeReward(0.0, 0.0, 0, _units(task), False, prepared.defines_entry_point,
                          prepared.fenced, Status.ERROR, "SyntaxError: the program does not parse")
    harness = prepared.harness
    verdicts, check_done = _verdicts(result, harness)
    passed = _count_passed(harness, verdicts, check_done)
    all_passed = passed == harness.total and (not harness.has_check or check_done)
    return CodeReward(
        passed=1.0 if all_passed else 0.0,
        fraction=passed / harness.total,
        tests_passed=passed,
        tests_total=harness.total,
        parses=True,
        defines_entry_point=prepared.defines_entry_point,
        fenced=prepared.fenced,
        status=result.status,
        error=_first_error(result),
        seconds=result.seconds,
    )


def score_completion(
    completion: str, task: CodeTask, *, limits: SandboxLimits | None = None
) -> CodeReward:
    """Run ``task``'s tests on one completion in the sandbox."""
    prepared = _prepare(completion, task, limits or DEFAULT_LIMITS)
    result = None
    if prepared.job is not None:
        result = run_python(prepared.job.source, limits=prepared.job.limits)
    return _reward(prepared, result, task)


def score_completions(
    completions: Sequence[str],
    tasks: Sequence[CodeTask],
    *,
    pool: SandboxPool | None = None,
    workers: int | None = None,
    limits: SandboxLimits | None = None,
) -> list[CodeReward]:
    """Score every completion against its own task (``tasks[i]`` for ``completions[i]``), in
    parallel through ``pool`` (or a pool of ``workers`` made for the call)."""
    if len(completions) != len(tasks):
        raise CodeTaskError(f"{len(completions)} completions for {len(tasks)} tasks")
    prepared = [_prepare(c, t, limits or DEFAULT_LIMITS) for c, t in zip(completions, tasks)]
    jobs = [p.job for p in prepared if p.job is not None]
    if pool is None:
        with SandboxPool(workers) as own:
            results = iter(own.run_jobs(jobs))
    else:
        results = iter(pool.run_jobs(jobs))
    return [
        _reward(p, next(results) if p.job is not None else None, task)
        for p, task in zip(prepared, tasks)
    ]


def unit_test_reward(
    metric: str = "passed",
    *,
    pool: SandboxPool | None = None,
    limits: SandboxLimits | None = None,
) -> RewardFn:
    """A reward function ``(examples, answers) -> rewards`` for RL: each example's meta holds
    its ``CodeTask`` (``CodeTask.from_meta``); ``metric`` is ``passed`` or ``fraction``."""
    pick: dict[str, Callable[[CodeReward], float]] = {
        "passed": lambda r: r.passed,
        "fraction": lambda r: r.fraction,
    }
    if metric not in pick:
        raise CodeTaskError(f"a unit-test reward is 'passed' or 'fraction'; got {metric!r}")

    def reward(examples: Sequence[Example], answers: Sequence[str]) -> list[float]:
        if len(examples) != len(answers):
            raise ValueError(f"{len(answers)} answers for {len(examples)} examples")
        tasks = [CodeTask.from_meta(e.meta) for e in examples]
        rewards = score_completions(list(answers), tasks, pool=pool, limits=limits)
        return [pick[metric](r) for r in rewards]

    return reward
