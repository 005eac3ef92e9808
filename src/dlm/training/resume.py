"""What a resumed run may change, and how the changes that are allowed are applied.

A checkpoint keeps the ``train_config.yaml`` it was written with. On resume the recipe given
now is compared with it, field by field, before anything of the run directory is touched:

* fields of ``RESUMABLE`` may change (how long to train, the learning rate and its schedule,
  optimiser knobs kept in its parameter groups, logging and checkpointing): each change is
  reported, and the LR schedule is rebuilt from the resumed step with the new values;
* any other field (the model's shape, the data, the objective, the diffusion process, the
  batch and seeds that fix the data order) may not: the resume stops with an error naming the
  field and both values, since the saved weights or the data position would not fit it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from dlm.config import ConfigError, to_dict

from . import checkpoints as ckpt
from .config import TrainConfig

__all__ = ["RESUMABLE", "Resume", "resolve_resume", "resume_changes", "flatten"]

#: Dotted fields a resumed run may set to new values.
RESUMABLE = frozenset(
    {
        "optim.max_steps",
        "optim.lr",
        "optim.warmup_steps",
        "optim.scheduler",
        "optim.weight_decay",
        "optim.betas",
        "optim.max_grad_norm",
        "output_dir",
        "resume",
        "save_every",
        "keep_last",
        "log_every",
        "eval_every",
        "eval_examples",
        "progress",
    }
)


def flatten(tree: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{"optim": {"lr": 1}}`` -> ``{"optim.lr": 1}`` (lists and option dicts stay values)."""
    flat = {}
    for key, value in tree.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict) and key not in ("task_options",):
            flat.update(flatten(value, name + "."))
        else:
            flat[name] = value
    return flat


def resume_changes(saved: dict[str, Any], config: TrainConfig, checkpoint: str) -> dict[str, tuple]:
    """``{field: (saved value, new value)}`` for the allowed changes; a ``ConfigError`` naming
    the first field that may not change."""
    before, after = flatten(saved), flatten(to_dict(config))
    changes = {}
    for name in sorted(set(before) | set(after)):
        if name not in before:  # the checkpoint predates this field
            continue
        old, new = before[name], after.get(name)
        if old == new or (isinstance(old, list | tuple) and list(old) == list(new or [])):
            continue
        if name not in RESUMABLE:
            raise ConfigError(
                f"resume={checkpoint}: {name} was {old!r} in that run and is {new!r} now; a resumed "
                f"run keeps the model, data and objective, so set {name}={old!r} again (or start a "
                "new run in a fresh output_dir)"
            )
        changes[name] = (old, new)
    return changes


@dataclass(frozen=True)
class Resume:
    """Where a resumed run starts: the checkpoint, its trainer state and the allowed changes."""

    path: Path
    state: dict[str, Any]
    changes: dict[str, tuple]

    @property
    def step(self) -> int:
        return int(self.state["step"])


def resolve_resume(
    config: TrainConfig, *, early: bool = False, num_processes: int | None = None
) -> Resume | None:
    """The checkpoint ``config.resume`` names, read once (None: start at step 0), with the
    allowed changes against its recipe; a clear error for an incomplete checkpoint, a change that may not be
    made, a ``max_steps`` the checkpoint is already past, or another number of processes.

    Reads only. ``dlm.training.train`` calls it ``early``, before preparing any data: then a
    named checkpoint that is not complete is left for the Trainer, which first recovers what
    an interrupted save left (a swap caught half way may restore it) and then calls it again.
    """
    resume = config.resume
    if resume is None:
        return None
    if resume == "latest":
        path = ckpt.latest_checkpoint(Path(config.output_dir))
        if path is None:
            return None
    else:
        path = Path(resume)
        if early and not ckpt.is_complete(path):
            return None
    state = ckpt.read_trainer_state(path)  # a clear error when it is not a complete checkpoint
    step = int(state["step"])
    if config.optim.max_steps < step:
        raise ConfigError(
            f"resume={path}: that checkpoint is at step {step}, past optim.max_steps="
            f"{config.optim.max_steps}; raise optim.max_steps or resume from an earlier checkpoint"
        )
    saved_processes = state.get("num_processes")
    if num_processes is not None and saved_processes not in (None, num_processes):
        raise ConfigError(
            f"resume={path}: that run had {saved_processes} processes and this one has "
            f"{num_processes}; the data order and random states are per process, so launch "
            f"with {saved_processes} (accelerate launch --num_processes {saved_processes})"
        )
    saved = path / "train_config.yaml"
    changes = (
        resume_changes(yaml.safe_load(saved.read_text()) or {}, config, str(path))
        if saved.is_file()
        else {}
    )
    return Resume(path, state, changes)
