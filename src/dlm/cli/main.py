"""``dlm`` command-line entry point: parses arguments and calls the same functions as the API.

    dlm demo [--compare-ar] [--json PATH] [--out DIR]
    dlm train RECIPE.yaml [key=value ...]
    dlm generate --model DIR (--prompt TEXT | --input FILE.jsonl) [sampler options]
    dlm task make NAME [--split S] [--n N] [--n-test N] [--seed S] [--out DIR]
    dlm eval --model DIR [--task NAME --split S] [--samples K --vote] [sampler options]
    dlm convert SRC DST      (a Dream, Dream-Coder, LLaDA, DiffuGPT or DiffuLLaMA directory)
    dlm eval ppl --model DIR --data FILE [--seq-len N] [--mc-num K]
    dlm eval lm-eval --model dlm --model_args pretrained=DIR,... --tasks ...   (lm-eval's flags)

Errors a user can cause print one message and exit with status 2, without a traceback
(set DLM_DEBUG=1 to see it).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from dlm.config import ConfigError

__all__ = ["main", "build_parser"]


def _add_sampler_options(parser: argparse.ArgumentParser, max_new_tokens: int | None = 64) -> None:
    from dlm.sampling import POLICIES

    group = parser.add_argument_group("sampler")
    group.add_argument(
        "--max-new-tokens",
        type=int,
        default=max_new_tokens,
        help="length of the generation region"
        + (" (default: the task's longest answer)" if max_new_tokens is None else ""),
    )
    group.add_argument(
        "--steps", type=int, default=None, help="denoising steps (default: max-new-tokens)"
    )
    group.add_argument(
        "--policy", choices=POLICIES, default="confidence", help="which positions to commit first"
    )
    group.add_argument(
        "--temperature", type=float, default=0.0, help="token sampling temperature (0 = greedy)"
    )
    group.add_argument("--top-p", type=float, default=None)
    group.add_argument("--top-k", type=int, default=None)
    group.add_argument(
        "--policy-temperature",
        type=float,
        default=0.0,
        help="> 0 samples positions from softmax(score / T) instead of taking the top ones",
    )
    group.add_argument("--seed", type=int, default=None)
    group.add_argument(
        "--block-length",
        type=int,
        default=None,
        help="fill the region in semi-AR blocks of this size",
    )
    group.add_argument(
        "--threshold",
        type=float,
        default=None,
        help="commit every token above this probability (and each row's best) per step",
    )
    group.add_argument(
        "--factor", type=float, default=None, help="Fast-dLLM factor rule instead of a threshold"
    )
    group.add_argument(
        "--cache",
        choices=("none", "prefix", "dual"),
        default="none",
        help="key/value cache refreshed at each block start (approximate)",
    )
    group.add_argument(
        "--compile", action="store_true", help="torch.compile the per-step forward (CUDA graphs)"
    )
    group.add_argument(
        "--eos-penalty", type=float, default=0.0, help="annealed PAD/EOS logit penalty (0 = off)"
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="dlm", description="Discrete (masked) diffusion language models."
    )
    sub = parser.add_subparsers(dest="command", required=True)

    demo = sub.add_parser(
        "demo", help="train a diffusion model on Sudoku from scratch and solve held-out puzzles"
    )
    demo.add_argument(
        "--compare-ar", action="store_true", help="also train the same-size AR model and compare"
    )
    demo.add_argument("--json", metavar="PATH", help="write the results as JSON")
    demo.add_argument(
        "--out", metavar="DIR", help="keep the trained model as a dlm checkpoint in DIR"
    )
    demo.add_argument(
        "overrides",
        nargs="*",
        metavar="key=value",
        help="change the embedded recipe, e.g. optim.max_steps=300",
    )

    train = sub.add_parser("train", help="train from a YAML recipe")
    train.add_argument("recipe", help="YAML recipe, e.g. recipes/sudoku/diffusion.yaml")
    train.add_argument(
        "overrides", nargs="*", metavar="key=value", help="dotted overrides, e.g. optim.lr=3e-4"
    )

    gen = sub.add_parser("generate", help="sample from a trained model")
    gen.add_argument("--model", required=True, help="a dlm checkpoint directory")
    src = gen.add_mutually_exclusive_group(required=True)
    src.add_argument("--prompt", help="one prompt (text, encoded with the model's tokenizer)")
    src.add_argument(
        "--input",
        metavar="FILE.jsonl",
        help="prompts, one JSON object with a 'prompt' key per line",
    )
    gen.add_argument(
        "--output", metavar="FILE.jsonl", help="write results here instead of printing them"
    )
    gen.add_argument("--batch-size", type=int, default=32)
    gen.add_argument(
        "--chat",
        action="store_true",
        help="wrap each prompt (or a JSONL line's 'messages') in the tokenizer's chat template",
    )
    gen.add_argument(
        "--stream", action="store_true", help="show the canvas filling in, step by step"
    )
    _add_sampler_options(gen)

    conv = sub.add_parser(
        "convert",
        help="rewrite a published checkpoint (Dream, Dream-Coder, LLaDA, DiffuGPT, DiffuLLaMA) "
        "as a dlm checkpoint, without remote code",
    )
    conv.add_argument("src", help="the published checkpoint directory")
    conv.add_argument("dst", help="where to write the dlm checkpoint")

    task = sub.add_parser("task", help="work with the offline task generators")
    task_sub = task.add_subparsers(dest="task_command", required=True)
    make = task_sub.add_parser("make", help="write a task's seeded train/test examples as JSONL")
    make.add_argument("name", help="a registered task: " + ", ".join(_task_names()))
    _add_task_selection(make)
    make.add_argument("--n", type=int, default=10000, help="training examples")
    make.add_argument("--n-test", type=int, default=1000, help="held-out examples")
    make.add_argument("--seed", type=int, default=0)
    make.add_argument("--out", metavar="DIR", help="output directory (default data/NAME[-SPLIT])")

    ev = sub.add_parser(
        "eval",
        help="verified task accuracy of a checkpoint, per bucket "
        "(also: dlm eval ppl ..., dlm eval lm-eval ...)",
    )
    ev.add_argument("--model", required=True, help="a dlm checkpoint directory")
    ev.add_argument("--task", help="a registered task (default: the one the model was trained on)")
    _add_task_selection(ev)
    ev.add_argument(
        "--data", metavar="FILE.jsonl", help="examples to evaluate (from dlm task make)"
    )
    ev.add_argument("--n", type=int, default=None, help="evaluate only the first N examples")
    ev.add_argument(
        "--seed-data",
        type=int,
        default=1,
        help="generator seed when neither a recipe nor --data gives the examples",
    )
    ev.add_argument("--batch-size", type=int, default=128)
    ev.add_argument("--samples", type=int, default=1, help="samples per prompt (self-consistency)")
    ev.add_argument("--vote", action="store_true", help="majority vote on the final answer (SC@k)")
    ev.add_argument("--multipass", action="store_true", help="one thought per pass (DoT-MP)")
    ev.add_argument("--max-passes", type=int, default=12, help="passes per answer with --multipass")
    ev.add_argument("--json", metavar="PATH", help="write the report as JSON")
    ev.add_argument(
        "--metric",
        action="append",
        metavar="NAME",
        help="a metric of the task to report overall and per bucket (repeatable or a comma "
        "list; default: verify, the strict check; e.g. lenient for countdown)",
    )
    _add_sampler_options(ev, max_new_tokens=None)
    return parser


def build_ppl_parser() -> argparse.ArgumentParser:
    ppl = argparse.ArgumentParser(
        prog="dlm eval ppl",
        description="Monte Carlo ELBO bound on the perplexity of a text file",
    )
    ppl.add_argument("--model", required=True, help="a dlm checkpoint directory")
    ppl.add_argument(
        "--data", required=True, help=".txt (documents split at blank lines) or .jsonl with 'text'"
    )
    ppl.add_argument("--seq-len", type=int, default=None, help="window length (default: positions)")
    ppl.add_argument("--context", type=int, default=0, help="tokens of context before each window")
    ppl.add_argument("--mc-num", type=int, default=128, help="Monte Carlo samples per window")
    ppl.add_argument("--batch-size", type=int, default=32, help="rows per forward pass")
    ppl.add_argument("--seed", type=int, default=0)
    ppl.add_argument("--device", default=None)
    ppl.add_argument("--json", metavar="PATH", help="write the report as JSON")
    return ppl


def _run_eval_ppl(args: argparse.Namespace) -> int:
    from .eval_ppl import run_eval_ppl

    return run_eval_ppl(
        args.model,
        args.data,
        args.seq_len,
        args.mc_num,
        args.batch_size,
        args.json,
        context=args.context,
        seed=args.seed,
        device=args.device,
    )


def _task_names() -> list[str]:
    from dlm.tasks import TASKS

    return sorted(TASKS)


def _add_task_selection(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--split", help="a named split, e.g. cd3 (countdown), easy (sudoku), n5 (sat)"
    )
    parser.add_argument(
        "--option",
        action="append",
        metavar="key=value",
        help="a task option, e.g. numbers=3 (repeatable)",
    )


def _run_demo(args: argparse.Namespace) -> int:
    from dlm.config import parse_override
    from dlm.demo import run_demo

    overrides = {}
    for text in args.overrides:
        path, value = parse_override(text)
        overrides[".".join(path)] = value
    run_demo(compare_ar=args.compare_ar, json_path=args.json, out_dir=args.out, overrides=overrides)
    return 0


def _run_train(args: argparse.Namespace) -> int:
    from dlm.training import load_train_config, train

    config = load_train_config(args.recipe, args.overrides)

    def log_line(step: int, metrics: dict[str, float]) -> None:
        if not config.progress:  # the progress bar shows these otherwise
            ce = f" ce {metrics['ce']:.4f}" if "ce" in metrics else ""
            print(
                f"step {step}/{config.optim.max_steps} loss {metrics['loss']:.4f}{ce} "
                f"{metrics['tokens_per_s']:.0f} tok/s",
                flush=True,
            )

    result, _ = train(config, callbacks=[log_line])
    print(
        f"trained {result.steps} steps in {result.train_seconds:.0f}s; model saved to {result.model_dir}"
    )
    return 0


def _run_generate(args: argparse.Namespace) -> int:
    from .generate import run_generate

    return run_generate(args)


def _run_task(args: argparse.Namespace) -> int:
    from .task_make import run_task_make

    return run_task_make(args)


def _run_eval(args: argparse.Namespace) -> int:
    from .evaluate import run_eval

    return run_eval(args)


def _run_convert(args: argparse.Namespace) -> int:
    from .convert import run_convert

    return run_convert(args.src, args.dst)


COMMANDS = {
    "convert": _run_convert,
    "demo": _run_demo,
    "train": _run_train,
    "generate": _run_generate,
    "task": _run_task,
    "eval": _run_eval,
}


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:2] == ["eval", "lm-eval"]:  # lm-eval parses its own flags
        from .eval_lm import run_lm_eval

        return run_lm_eval(argv[2:])
    if argv[:2] == ["eval", "ppl"]:
        args = build_ppl_parser().parse_args(argv[2:])
        args.command, run = "eval ppl", _run_eval_ppl
    else:
        args = build_parser().parse_args(argv)
        run = COMMANDS[args.command]
    from dlm.data import DataError
    from dlm.models import NotADlmCheckpointError

    try:
        return run(args)
    except (ConfigError, DataError, NotADlmCheckpointError, FileNotFoundError, ValueError) as err:
        if os.environ.get("DLM_DEBUG"):
            raise
        print(f"dlm {args.command}: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
