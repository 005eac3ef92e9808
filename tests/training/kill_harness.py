"""Kill training runs with SIGKILL at chosen or random moments, resume them, compare.

One warm process imports ``dlm`` once and forks a child per training attempt (a fresh
interpreter per attempt would spend most of the time importing torch). The parent never runs
a torch operation before the last child has finished, so forking is safe. A child trains from
``dlm.training.train`` with ``resume=latest`` and appends every step's loss (``repr``, exact) to
``losses.txt``; it is stopped either by ``DLM_FAULT=point@n`` (it SIGKILLs itself there, see
``dlm.atomic.fault_point``) or by the parent's SIGKILL after a delay. The parent then starts
the next attempt, until one finishes.

A run is *intact* when every loss ever written for a step equals the uninterrupted run's loss
for that step, bit for bit, and its final weights and last checkpoint's weights are equal to
the uninterrupted run's. Used by ``tests/training/test_kill.py`` and
``benchmarks/kill_soak.py``.
"""

from __future__ import annotations

import os
import signal
import sys
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

#: A tiny Sudoku run: 6 steps, a checkpoint every 2 (so saves replace and prune), dropout on.
BASE_OVERRIDES = [
    "data.task=sudoku",
    "data.task_options={box_rows: 2, box_cols: 2, min_givens: 6, max_givens: 9}",
    "data.n_train=64",
    "data.n_eval=4",
    "model.hidden_size=32",
    "model.num_layers=2",
    "model.num_heads=2",
    "model.max_positions=40",
    "model.dropout=0.1",
    "optim.batch_size=8",
    "optim.grad_accum=2",
    "optim.max_steps=6",
    "optim.lr=3e-3",
    "save_every=2",
    "keep_last=2",
    "progress=false",
    "log_every=1",
]


@dataclass
class Attempt:
    fault: str | None = None  # DLM_FAULT for the child, e.g. "replace.aside@1"
    kill_after: float | None = None  # or: the parent SIGKILLs it after this many seconds
    overrides: list[str] = field(default_factory=list)  # on top of BASE_OVERRIDES + resume=latest


@dataclass
class Outcome:
    statuses: list[str]  # per attempt: "ok", "killed", "error: ..."
    problems: list[str]  # empty when the run is intact


def _child(run_dir: Path, overrides: list[str], fault: str | None) -> None:
    """Train in this (forked) process and exit: 0 done, 2 a user error, 1 a bug."""
    code = 1
    try:
        import torch

        torch.set_num_threads(1)
        if fault:
            os.environ["DLM_FAULT"] = fault
        else:
            os.environ.pop("DLM_FAULT", None)
        from dlm.errors import DlmUserError
        from dlm.training import load_train_config, train

        config = load_train_config(
            None, [*BASE_OVERRIDES, f"output_dir={run_dir}", "resume=latest", *overrides]
        )
        losses = open(run_dir.parent / f"{run_dir.name}.losses.txt", "a")  # noqa: SIM115

        def record(step: int, metrics: dict[str, float]) -> None:
            losses.write(f"{step} {metrics['loss']!r}\n")
            losses.flush()

        try:
            train(config, callbacks=[record])
            code = 0
        except DlmUserError as err:
            (run_dir.parent / f"{run_dir.name}.error.txt").write_text(str(err))
            code = 2
    except BaseException:
        traceback.print_exc()
        code = 1
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


def warm_up() -> None:
    """Import, in the parent, everything a child needs (no torch op runs here)."""
    import accelerate  # noqa: F401
    import safetensors.torch  # noqa: F401
    from transformers import GPT2LMHeadModel  # noqa: F401

    import dlm.training  # noqa: F401


def attempt(run_dir: Path, a: Attempt, run_overrides: list[str] = ()) -> str:
    """Run one attempt in a forked child; its status. ``run_overrides`` (shared by every
    attempt of a run) come before the attempt's own."""
    warm_up()
    run_dir.parent.mkdir(parents=True, exist_ok=True)
    pid = os.fork()
    if pid == 0:
        _child(run_dir, [*run_overrides, *a.overrides], a.fault)
    if a.kill_after is not None:
        deadline = time.monotonic() + a.kill_after
        while time.monotonic() < deadline:
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                return _status(status, run_dir)
            time.sleep(0.01)
        os.kill(pid, signal.SIGKILL)
    _, status = os.waitpid(pid, 0)
    return _status(status, run_dir)


def _status(status: int, run_dir: Path) -> str:
    if os.WIFSIGNALED(status):
        return (
            "killed" if os.WTERMSIG(status) == signal.SIGKILL else f"signal {os.WTERMSIG(status)}"
        )
    code = os.WEXITSTATUS(status)
    if code == 0:
        return "ok"
    error = run_dir.parent / f"{run_dir.name}.error.txt"
    return f"error {code}: " + (error.read_text() if error.is_file() else "see stderr")


def run(
    run_dir: Path, attempts: list[Attempt], max_resumes: int = 20, run_overrides: list[str] = ()
) -> list[str]:
    """The given attempts, then clean resumes until one finishes; every attempt's status."""
    statuses = [attempt(run_dir, a, run_overrides) for a in attempts]
    while statuses[-1] != "ok" and len(statuses) < len(attempts) + max_resumes:
        if statuses[-1].startswith(("error", "signal")):
            break
        statuses.append(attempt(run_dir, Attempt(), run_overrides))
    return statuses


def read_losses(run_dir: Path) -> dict[int, list[float]]:
    """Every loss written per step (a line cut by a kill is skipped)."""
    path = run_dir.parent / f"{run_dir.name}.losses.txt"
    found: dict[int, list[float]] = {}
    if not path.is_file():
        return found
    for line in path.read_text().splitlines():
        parts = line.split()
        if len(parts) != 2:
            continue
        try:
            found.setdefault(int(parts[0]), []).append(float(parts[1]))
        except ValueError:
            continue
    return found


def compare(reference: Path, run_dir: Path) -> list[str]:
    """What differs between an interrupted run and the uninterrupted ``reference`` run."""
    import torch
    from safetensors.torch import load_file

    from dlm.training.checkpoints import incomplete_reason, latest_checkpoint

    problems = []
    want, got = read_losses(reference), read_losses(run_dir)
    for step, (loss,) in sorted(want.items()):
        seen = got.get(step, [])
        if not seen:
            problems.append(f"step {step}: no loss recorded")
        elif any(value != loss for value in seen):
            problems.append(f"step {step}: losses {seen} differ from {loss!r}")
    for name in ("model", None):
        if name is None:
            ref_dir, run_dir_ = latest_checkpoint(reference), latest_checkpoint(run_dir)
            if run_dir_ is None or ref_dir is None or run_dir_.name != ref_dir.name:
                problems.append(f"last checkpoint {run_dir_} is not {ref_dir}")
                continue
            ref_dir, run_dir_ = ref_dir / "model", run_dir_ / "model"
        else:
            ref_dir, run_dir_ = reference / name, run_dir / name
            reason = incomplete_reason(run_dir_) if run_dir_.is_dir() else "missing"
            if reason:
                problems.append(f"{run_dir_}: {reason}")
                continue
        try:
            a = load_file(ref_dir / "model.safetensors")
            b = load_file(run_dir_ / "model.safetensors")
        except (OSError, RuntimeError) as err:  # a missing or unreadable file is a finding
            problems.append(f"{run_dir_}: {err}")
            continue
        if a.keys() != b.keys() or not all(torch.equal(a[k], b[k]) for k in a):
            problems.append(f"{run_dir_}: weights differ from {ref_dir}")
    leftovers = [
        p.name for p in run_dir.iterdir() if p.name.startswith((".tmp-", ".old-", ".trash-"))
    ]
    if leftovers:
        problems.append(f"leftovers after the last run: {leftovers}")
    return problems


def run_scenarios(root: Path, scenarios: dict[str, list[Attempt]]) -> dict[str, Outcome]:
    """The uninterrupted reference run, then every scenario; each compared with the reference."""
    reference = root / "reference"
    statuses = run(reference, [Attempt()], max_resumes=0)
    if statuses != ["ok"]:
        raise RuntimeError(f"the uninterrupted run failed: {statuses}")
    runs = {name: run(root / name, attempts) for name, attempts in scenarios.items()}
    outcomes = {}
    for name, statuses in runs.items():  # torch runs in this process only from here on
        problems = [] if statuses[-1] == "ok" else [f"did not finish: {statuses}"]
        outcomes[name] = Outcome(statuses, problems + compare(reference, root / name))
    return outcomes


def main(argv: list[str]) -> int:
    """``kill_harness.py ROOT SCENARIOS_JSON``: prints ``{name: {statuses, problems}}``."""
    import json

    root, spec = Path(argv[0]), json.loads(argv[1])
    scenarios = {
        name: [Attempt(**fields) for fields in attempts] for name, attempts in spec.items()
    }
    outcomes = run_scenarios(root, scenarios)
    print(json.dumps({name: vars(o) for name, o in outcomes.items()}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
