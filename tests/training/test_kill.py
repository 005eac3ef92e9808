"""Training survives SIGKILL anywhere: inside checkpoint writes, swaps and deletes, or at random.

Each scenario kills a tiny run (``kill_harness.BASE_OVERRIDES``: 6 steps, a checkpoint every
2, keep 2) one or more times, resumes it with ``resume=latest`` until it finishes, and checks
that every loss it ever logged, its final weights and its last checkpoint's weights equal an
uninterrupted run's bit for bit, and that no leftover folder remains. All scenarios run in one
subprocess that imports ``dlm`` once and forks a child per attempt (``kill_harness``).
"""

from __future__ import annotations

import json
import random
import subprocess
import sys
from pathlib import Path

import pytest

HARNESS = Path(__file__).with_name("kill_harness.py")


def _scenarios(root: Path) -> dict[str, list[dict]]:
    rng = random.Random(13)
    return {
        # a kill between checkpoints: the steps since the last one are redone
        "mid_training": [{"fault": "train.step@3"}],
        # inside a checkpoint write: accelerate's state written, the model not yet
        "inside_write": [{"fault": "save.state@2"}],
        # everything written and fsynced, the completeness manifest not yet
        "before_manifest": [{"fault": "save.before_manifest@2"}],
        # complete under its temporary name, not yet swapped in
        "written_not_swapped": [{"fault": "save.complete@2"}],
        # pruning: the old checkpoint renamed for deletion, or half deleted
        "prune_renamed": [{"fault": "discard.renamed@1"}],
        "prune_half_deleted": [{"fault": "discard.partial@1"}],
        # a finished run resumed at its last step replaces its model: killed mid-swap
        "replace_model_aside": [{}, {"fault": "replace.aside@1"}],
        "replace_model_swapped": [{}, {"fault": "replace.swapped@1"}],
        # a retried job from an earlier checkpoint replaces a checkpoint of the same step
        "retried_job": [
            {},
            {
                "overrides": [f"resume={root / 'retried_job' / 'checkpoint-4'}"],
                "fault": "replace.aside@1",
            },
        ],
        # two kills in a row, at different places
        "two_faults": [{"fault": "save.complete@1"}, {"fault": "discard.partial@1"}],
        # the parent's SIGKILL at random moments
        "random_kills": [{"kill_after": round(rng.uniform(0.3, 1.2), 3)} for _ in range(3)],
        # a different run, which the comparison must tell apart (the test can fail)
        "different_run": [{"overrides": ["seed=1"]}],
    }


@pytest.fixture(scope="module")
def outcomes(tmp_path_factory) -> dict[str, dict]:
    root = tmp_path_factory.mktemp("kills")
    spec = json.dumps(_scenarios(root))
    done = subprocess.run(
        [sys.executable, str(HARNESS), str(root), spec],
        capture_output=True,
        text=True,
        timeout=600,
        env={**__import__("os").environ, "OMP_NUM_THREADS": "1"},
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("name", [n for n in _scenarios(Path(".")) if n != "different_run"])
def test_a_killed_run_resumes_bit_identical(outcomes, name):
    outcome = outcomes[name]
    assert outcome["statuses"][-1] == "ok", outcome
    if name != "random_kills":  # a random kill may land after the run finished
        assert "killed" in outcome["statuses"], outcome
    assert outcome["problems"] == [], outcome


def test_the_comparison_tells_a_different_run_apart(outcomes):
    problems = outcomes["different_run"]["problems"]
    assert any("losses" in p for p in problems)
    assert any("weights differ" in p for p in problems)
