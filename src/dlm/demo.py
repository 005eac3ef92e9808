"""``dlm demo``: the field's founding claim on a laptop CPU, end to end, in a few minutes.

It generates 6x6 Sudoku puzzles offline (unique solutions, proved by a solver), trains a small
masked-diffusion model from scratch, solves held-out puzzles whose solution grids never
appear in training, checks every answer with the rule verifier, prints the accuracy and shows
one puzzle being solved step by step. With ``compare_ar`` it trains the same backbone as an
autoregressive model on the same data and budget and reports both accuracies.

The embedded default is the same run as ``recipes/sudoku/diffusion.yaml`` (a test keeps the
two equal), so ``dlm train`` reproduces the demo's model.

The outputs (``json_path``, ``out_dir``) are checked before any puzzle is generated; the JSON
is written atomically, and the model replaces an earlier copy at ``out_dir`` only once the new
one is complete. A folder at ``out_dir`` that is not a dlm checkpoint is never replaced.
"""

from __future__ import annotations

import copy
import json
import shlex
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from rich.console import Console
from rich.text import Text

from dlm.atomic import (
    OutputPathError,
    atomic_write_text,
    check_output_dir,
    check_output_path,
    replace_dir,
)
from dlm.config import ConfigError, from_dict
from dlm.evaluation import TaskReport, batch_prompts, evaluate_task
from dlm.models import DiffusionLM
from dlm.models.diffusion_lm import DLM_CONFIG_NAME
from dlm.sampling import generate
from dlm.tasks import SudokuTask, get_task
from dlm.training import (
    Prepared,
    TrainConfig,
    Trainer,
    TrainResult,
    build_model,
    prepare_data,
    record_task_defaults,
)

__all__ = [
    "DEMO_RECIPE",
    "DemoResult",
    "demo_config",
    "evaluate_sudoku",
    "render_solving",
    "run_demo",
    "train_model",
]

# The demo's training run, identical to recipes/sudoku/diffusion.yaml.
DEMO_RECIPE: dict[str, Any] = {
    "objective": "sft",
    "model": {
        "arch": "gpt2",
        "hidden_size": 128,
        "num_layers": 4,
        "num_heads": 4,
        "max_positions": 80,
        "attention": "bidirectional",
        "shift": False,
    },
    "data": {
        "task": "sudoku",
        "task_options": {"box_rows": 2, "box_cols": 3, "min_givens": 18, "max_givens": 24},
        "n_train": 20000,
        "n_eval": 256,
        "seed": 0,
    },
    "diffusion": {"schedule": "cosine", "weighting": "elbo", "stratified": True},
    "optim": {
        "lr": 1e-3,
        "betas": [0.9, 0.95],
        "warmup_steps": 50,
        "scheduler": "cosine",
        "max_steps": 900,
        "batch_size": 64,
        "max_grad_norm": 1.0,
    },
    "output_dir": "runs/sudoku-diffusion",
    "save_every": 0,
    "log_every": 50,
}
# How the demo decodes: easy-first by confidence, one cell per step.
DEMO_SAMPLER: dict[str, Any] = {"policy": "confidence", "steps": 36}


@dataclass
class DemoResult:
    task: str
    accuracy: float
    n_eval: int
    train_seconds: float
    params: int
    ar_accuracy: float | None
    total_seconds: float
    model_dir: Path | None

    def to_json(self) -> dict[str, Any]:
        return {
            "task": self.task,
            "accuracy": self.accuracy,
            "n_eval": self.n_eval,
            "train_seconds": self.train_seconds,
            "params": self.params,
            "ar_accuracy": self.ar_accuracy,
        }


def demo_config(
    output_dir: str, overrides: dict[str, Any] | None = None, *, objective: str = "sft"
) -> TrainConfig:
    recipe = copy.deepcopy(DEMO_RECIPE)
    for key, value in (overrides or {}).items():
        node = recipe
        *parents, leaf = key.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
    recipe["output_dir"] = output_dir
    recipe["objective"] = objective
    recipe["progress"] = False
    if objective == "ar":
        recipe["model"]["attention"] = "causal"
        recipe["model"]["shift"] = True
    return from_dict(TrainConfig, recipe)


def _grid_frame(title: str, cells: list[str], size: int, styles: list[str]) -> list[Text]:
    lines = [Text(title.ljust(size * 2 + 1), style="bold")]
    for r in range(size):
        line = Text()
        for c in range(size):
            line.append(cells[r * size + c] + " ", style=styles[r * size + c])
        lines.append(line)
    return lines


def render_solving(
    history: list[torch.Tensor],
    row: int,
    prompt_length: int,
    size: int,
    puzzle: str,
    mask_id: int,
    digit_of: dict[int, str],
    per_line: int = 6,
) -> list[Text]:
    """The puzzle, then the canvas after every step, as rows of small grids (masks shown as '·')."""
    frames = [
        _grid_frame(
            "puzzle",
            [ch if ch != "0" else "·" for ch in puzzle],
            size,
            ["bold" if ch != "0" else "dim" for ch in puzzle],
        )
    ]
    previous = None
    for step, canvas in enumerate(history):
        cells = canvas[row, prompt_length : prompt_length + size * size].tolist()
        shown, styles = [], []
        for i, token in enumerate(cells):
            new = previous is not None and previous[i] == mask_id and token != mask_id
            shown.append("·" if token == mask_id else digit_of.get(token, "?"))
            styles.append("dim" if token == mask_id else ("bold green" if new else ""))
        frames.append(_grid_frame(f"step {step}", shown, size, styles))
        previous = cells
    blocks = []
    for start in range(0, len(frames), per_line):
        group = frames[start : start + per_line]
        for i in range(size + 1):
            joined = Text()
            for frame in group:
                joined.append_text(frame[i])
                joined.append("   ")
            blocks.append(joined)
        blocks.append(Text(""))
    return blocks


def train_model(
    config: TrainConfig, prepared: Prepared, callbacks=()
) -> tuple[DiffusionLM, TrainResult]:
    """Build the model a config names and train it on prepared data; returns it in eval mode."""
    model = build_model(config, prepared.tokenizer)
    record_task_defaults(model, prepared)
    if not model.is_autoregressive:  # the kept model samples as the demo evaluated it
        model.config.generation = {**DEMO_SAMPLER, **(model.config.generation or {})}
    trainer = Trainer(
        config,
        model,
        prepared.tokenizer,
        prepared.train,
        callbacks=list(callbacks),
        heldout_examples=prepared.eval_examples,
        header=False,  # the demo says what it trains; its run folder is temporary
    )
    result = trainer.fit()
    return trainer.unwrapped.eval(), result


def evaluate_sudoku(
    model: DiffusionLM, prepared: Prepared, task: SudokuTask, batch_size: int = 128
) -> TaskReport:
    """Verified accuracy on the held-out puzzles with the demo's sampler (AR models decode greedily)."""
    return evaluate_task(
        model,
        prepared.tokenizer,
        task,
        prepared.eval_examples,
        max_new_tokens=task.cells + 1,
        batch_size=batch_size,
        **DEMO_SAMPLER,
    )


def _train(config: TrainConfig, prepared: Prepared, console: Console, label: str):
    def report(step: int, metrics: dict[str, float]) -> None:
        console.print(
            f"  [{label}] step {step:>4}/{config.optim.max_steps}  loss {metrics['loss']:.4f}  "
            f"{metrics['tokens_per_s']:.0f} tok/s",
            highlight=False,
        )

    return train_model(config, prepared, callbacks=[report])


def _check_outputs(json_path: str | Path | None, out_dir: str | Path | None) -> None:
    """Refuse, before any work, outputs the demo could not write or would wrongly replace."""
    if json_path is not None:
        check_output_path(json_path, "--json")
    if out_dir is None:
        return
    kept = check_output_dir(out_dir, "--out")
    if kept.is_dir() and any(kept.iterdir()) and not (kept / DLM_CONFIG_NAME).is_file():
        raise OutputPathError(
            f"--out {kept} is a folder that holds files and no dlm checkpoint; the demo would "
            "replace it: give a new or empty folder"
        )


def _keep_model(model_dir: Path, kept: Path) -> None:
    """Copy the trained model to ``kept``, replacing an earlier copy only once it is complete."""
    tmp = kept.with_name(f".{kept.name}.writing")
    if tmp.exists():
        shutil.rmtree(tmp)
    try:
        shutil.copytree(model_dir, tmp)
        if kept.is_dir() and not any(kept.iterdir()):
            kept.rmdir()
        replace_dir(tmp, kept)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)


def run_demo(
    *,
    compare_ar: bool = False,
    json_path: str | Path | None = None,
    out_dir: str | Path | None = None,
    overrides: dict[str, Any] | None = None,
    console: Console | None = None,
) -> DemoResult:
    """Generate puzzles, train, solve held-out puzzles, verify, report (see module docstring)."""
    console = console or Console()
    started = time.perf_counter()
    _check_outputs(json_path, out_dir)
    work = Path(tempfile.mkdtemp(prefix="dlm-demo-"))
    try:
        config = demo_config(str(work / "diffusion"), overrides)
        task = get_task(config.data.task, **config.data.task_options)
        if not isinstance(task, SudokuTask):
            raise ConfigError(
                f"dlm demo shows a Sudoku task; data.task={config.data.task!r} is not one"
            )
        size = task.box_rows * task.box_cols
        console.print(
            f"[bold]dlm demo[/bold]: {size}x{size} Sudoku, masked diffusion from scratch on CPU "
            f"({torch.get_num_threads()} threads)"
        )
        t0 = time.perf_counter()
        prepared = prepare_data(config)
        console.print(
            f"generated {len(prepared.train)} training and {len(prepared.eval_examples)} held-out puzzles "
            f"(unique solutions, no shared solution grid) in {time.perf_counter() - t0:.1f}s"
        )

        model, result = _train(config, prepared, console, "diffusion")
        params = sum(p.numel() for p in model.parameters())
        console.print(
            f"trained {params / 1e6:.2f}M parameters for {result.steps} steps in {result.train_seconds:.0f}s"
        )

        report = evaluate_sudoku(model, prepared, task)
        _show_solving(model, prepared, task, console)
        console.print(
            f"[bold]diffusion accuracy: {report.accuracy:.1%}[/bold] ({report.correct}/{report.n_eval} "
            f"held-out puzzles verified; {DEMO_SAMPLER['steps']} steps, policy {DEMO_SAMPLER['policy']}; "
            f"{time.perf_counter() - started:.0f}s since start)"
        )

        ar_accuracy = None
        if compare_ar:
            ar_config = demo_config(str(work / "ar"), overrides, objective="ar")
            ar_model, ar_result = _train(ar_config, prepared, console, "ar")
            ar_report = evaluate_sudoku(ar_model, prepared, task)
            ar_accuracy = ar_report.accuracy
            console.print(
                f"[bold]autoregressive accuracy: {ar_accuracy:.1%}[/bold] ({ar_report.correct}/"
                f"{ar_report.n_eval}; same backbone, data and {ar_result.steps} steps, greedy decoding)"
            )

        kept = None
        if out_dir is not None:
            kept = Path(out_dir)
            _keep_model(Path(result.model_dir), kept)
            puzzle = prepared.eval_examples[0].prompt
            command = (
                f"dlm generate --model {shlex.quote(str(kept))} --prompt {shlex.quote(puzzle)}"
            )
            console.print(
                f"model saved to {kept}; solve a held-out puzzle with it:", highlight=False
            )
            console.print(f"  {command}", highlight=False, markup=False, soft_wrap=True)
        total = time.perf_counter() - started
        demo = DemoResult(
            "sudoku",
            report.accuracy,
            report.n_eval,
            result.train_seconds,
            params,
            ar_accuracy,
            total,
            kept,
        )
        console.print(f"total time {total:.0f}s")
        if json_path is not None:
            atomic_write_text(json_path, json.dumps(demo.to_json(), indent=2) + "\n")
        return demo
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _show_solving(model: DiffusionLM, prepared, task: SudokuTask, console: Console) -> None:
    example = prepared.eval_examples[0]
    size = task.box_rows * task.box_cols
    input_ids, mask = batch_prompts(prepared.tokenizer, [example.prompt])
    out = generate(
        model, input_ids, mask, max_new_tokens=size * size + 1, output_history=True, **DEMO_SAMPLER
    )
    vocab = prepared.tokenizer.get_vocab()
    digit_of = {i: ch for ch, i in vocab.items() if len(ch) == 1}
    console.print("one held-out puzzle being solved (· = masked, green = committed this step):")
    per_line = max(1, min(8, console.width // (2 * size + 3)))
    for line in render_solving(
        out.history,
        0,
        out.prompt_length,
        size,
        example.prompt,
        model.config.mask_token_id,
        digit_of,
        per_line=per_line,
    ):
        console.print(line, highlight=False)
    answer = prepared.tokenizer.decode(out.generated[0], skip_special_tokens=True).strip()
    console.print(f"verifier: {'solved' if task.verify(example, answer) else 'NOT solved'}")
