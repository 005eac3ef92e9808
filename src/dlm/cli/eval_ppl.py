"""``dlm eval ppl``: the perplexity bound of a checkpoint on a text file.

    dlm eval ppl --model DIR --data notes.txt --seq-len 256 --mc-num 128 [--json out.json]

A masked diffusion LM has no exact likelihood; this reports the Monte Carlo ELBO bound of
``dlm.evaluation.likelihood``: the per-token negative log-likelihood upper bound, the
perplexity bound exp(NLL) and their standard errors. Text comes from a ``.txt`` file
(documents separated by blank lines) or a ``.jsonl`` file's ``text`` field; each document is
cut into windows of ``seq_len`` tokens. A causal (AR twin) checkpoint gets its exact value.
``--json`` is checked before the model loads; the report is written atomically. A bar on
stderr follows the Monte Carlo batches on a terminal (none in a pipe, none with ``--quiet``).
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from dlm.atomic import atomic_write_text
from dlm.errors import DlmUserError

from .common import (
    add_quiet_option,
    check_output_path,
    load_model_and_tokenizer,
    non_negative_int,
    positive_int,
)

__all__ = ["DESCRIPTION", "add_arguments", "format_report", "run", "run_eval_ppl"]

DESCRIPTION = "Monte Carlo ELBO bound on the perplexity of a text file"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", required=True, help="a dlm checkpoint directory")
    parser.add_argument(
        "--data", required=True, help=".txt (documents split at blank lines) or .jsonl with 'text'"
    )
    parser.add_argument(
        "--seq-len", type=positive_int, default=None, help="window length (default: positions)"
    )
    parser.add_argument(
        "--context", type=non_negative_int, default=0, help="tokens of context before each window"
    )
    parser.add_argument(
        "--mc-num", type=positive_int, default=128, help="Monte Carlo samples per window"
    )
    parser.add_argument("--batch-size", type=positive_int, default=32, help="rows per forward pass")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default=None)
    parser.add_argument("--json", metavar="PATH", help="write the report as JSON")
    add_quiet_option(parser)


def run(args: argparse.Namespace) -> int:
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
        progress=not args.quiet,
    )


def format_report(report: dict[str, Any]) -> str:
    """Two lines: the NLL bound and the perplexity bound, each with its standard error."""
    kind = "exact NLL" if report["exact"] else "NLL bound"
    return (
        f"{kind}: {report['nll']:.4f} ± {report['nll_stderr']:.4f} nats/token over "
        f"{report['tokens']} tokens ({report['documents']} documents, {report['windows']} "
        f"windows of {report['seq_len']}, mc_num={report['mc_num']})\n"
        f"perplexity {'' if report['exact'] else 'bound'}: {report['perplexity']:.4f} ± "
        f"{report['perplexity_stderr']:.4f}"
    )


def run_eval_ppl(
    model_dir: str,
    data_file: str,
    seq_len: int | None = None,
    mc_num: int = 128,
    batch_size: int = 32,
    json_path: str | None = None,
    *,
    context: int = 0,
    seed: int = 0,
    device: str | None = None,
    progress: bool = False,
) -> int:
    """Print (and with ``json_path`` write) the perplexity bound; ``seq_len`` defaults to the
    model's positions; ``progress``: a bar over the batches on a terminal. Returns the exit
    status."""
    import torch

    from dlm.data import read_text_documents
    from dlm.evaluation.likelihood import perplexity_bound

    out = check_output_path(json_path, "--json") if json_path else None
    model, tokenizer = load_model_and_tokenizer(model_dir)
    texts = read_text_documents(data_file)
    model.to(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    seq_len = seq_len or model.max_positions
    if seq_len is None:
        raise DlmUserError("the model does not say how many positions it has; pass --seq-len")
    report = perplexity_bound(
        model,
        tokenizer,
        texts,
        seq_len,
        mc_num,
        batch_size=batch_size,
        context=context,
        seed=seed,
        progress=progress,
    )
    report = {"model": str(model_dir), "data": str(data_file), **report}
    print(format_report(report))
    if out is not None:
        atomic_write_text(out, json.dumps(report, indent=2) + "\n")
    return 0
