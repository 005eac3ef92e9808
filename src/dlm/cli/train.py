"""``dlm train``: train from a YAML recipe with dotted ``key=value`` overrides.

    dlm train recipes/sudoku/diffusion.yaml optim.max_steps=300 output_dir=runs/s

prints one line per logged step when no progress bar is shown (``progress=false``, or stderr is
not a terminal) and where
the model was saved. With ``eval_every=N`` it evaluates every N steps on the held-out split:
the loss, and for task data the verified accuracy of ``eval_examples`` examples, into
TensorBoard (``eval/loss``, ``eval/accuracy``, ``eval/accuracy/<bucket>``). ``accelerate launch -m dlm.cli.main train ...`` runs it on several
processes. The recipe (every value's range) and ``output_dir`` are checked before any work.
"""

from __future__ import annotations

import argparse
import os
import sys

__all__ = ["HELP", "add_arguments", "run"]

HELP = "train from a YAML recipe"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("recipe", help="YAML recipe, e.g. recipes/sudoku/diffusion.yaml")
    parser.add_argument(
        "overrides", nargs="*", metavar="key=value", help="dotted overrides, e.g. optim.lr=3e-4"
    )


def run(args: argparse.Namespace) -> int:
    from dlm.evaluation import training_evaluators
    from dlm.training import load_train_config, train

    from .common import check_output_dir

    config = load_train_config(args.recipe, args.overrides)
    check_output_dir(config.output_dir, "output_dir")

    # one process prints (under DDP every rank runs this function; the launchers set RANK).
    # Not accelerate's PartialState: made before the Accelerator, it would fix the backend.
    main_process = os.environ.get("RANK", "0") == "0"
    bar_shown = config.progress and sys.stderr.isatty()

    def log_line(step: int, metrics: dict[str, float]) -> None:
        if main_process and not bar_shown:  # the progress bar shows these otherwise
            ce = f" ce {metrics['ce']:.4f}" if "ce" in metrics else ""
            print(
                f"step {step}/{config.optim.max_steps} loss {metrics['loss']:.4f}{ce} "
                f"{metrics['tokens_per_s']:.0f} tok/s",
                flush=True,
            )

    result, _ = train(config, callbacks=[log_line], evaluators=training_evaluators)
    if main_process:
        print(
            f"trained {result.steps} steps in {result.train_seconds:.0f}s; model saved to {result.model_dir}"
        )
    return 0
