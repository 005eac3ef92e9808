"""Every registered task trains: a tiny diffusion model and a tiny AR model lower their loss
on a fixed batch after a few dozen steps on the task's own data."""

from __future__ import annotations

import pytest
import torch

from dlm.training import load_train_config
from dlm.training.objectives import build_objective
from dlm.training.setup import build_model, prepare_data

TASKS = {
    "addition": {"digits": 6},
    "boolean": {"depth": 2},
    "countdown": {"numbers": 3},
    "gsm": {"max_steps": 2},
    "multiplication": {"digits": 2},
    "multi-sudoku": {"count": 2, "box_rows": 2, "box_cols": 2, "min_givens": 6, "max_givens": 9},
    "path": {"nodes_per_chain": 4},
    "sat": {"variables": 5},
    "sudoku": {"box_rows": 2, "box_cols": 2, "min_givens": 6, "max_givens": 9},
    "sums": {"problems": 4, "digits": 2, "context": 1},
}


def _fixed_loss(objective, model, batch) -> float:
    torch.manual_seed(123)  # the same times and masks every time
    with torch.no_grad():
        return float(objective(model, batch, step=0).loss)


@pytest.mark.parametrize(
    "name, objective_name",
    [(name, "sft") for name in sorted(TASKS)] + [("countdown", "ar"), ("path", "ar")],
)
def test_a_tiny_model_learns_the_task(name: str, objective_name: str) -> None:
    config = load_train_config(
        None,
        [
            f"objective={objective_name}",
            f"data.task={name}",
            "data.n_train=16",
            "data.n_eval=4",
            "model.hidden_size=32",
            "model.num_layers=1",
            "model.num_heads=2",
            "model.max_positions=300",
            "model.shift=false",
            f"model.attention={'causal' if objective_name == 'ar' else 'bidirectional'}",
        ],
    )
    config.data.task_options = TASKS[name]
    torch.manual_seed(0)
    prepared = prepare_data(config)
    model = build_model(config, prepared.tokenizer).train()
    objective = build_objective(config)
    batch = prepared.train.select(torch.arange(16))
    before = _fixed_loss(objective, model, batch)
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    for step in range(15):
        loss = objective(model, batch, step).loss
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    after = _fixed_loss(objective, model, batch)
    assert after < 0.9 * before, (before, after)


@pytest.mark.parametrize("name", sorted(TASKS))
def test_every_task_bounds_its_answer_length(name: str) -> None:
    from dlm.tasks import get_task

    task = get_task(name, **TASKS[name])
    tok = task.tokenizer()
    examples = task.generate(20, seed=0)
    longest = max(len(tok.encode(e.target, add_special_tokens=False)) for e in examples)
    assert task.max_answer_tokens >= longest + (0 if task.slots is not None else 1)
