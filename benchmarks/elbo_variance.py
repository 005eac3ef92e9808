"""Variance of the Monte Carlo ELBO against ``mc_num``, on held-out text of a corpus model.

    python benchmarks/elbo_variance.py --model runs/stdlib-char/model [--windows 16] [--seeds 5]

For held-out windows (PREFIX characters of context, CONTINUATION characters scored) of the
model's corpus, estimates log p(continuation | prefix) >= ELBO with mc_num = 1, 4, 16, 64 and
256, each with several seeds, and prints per mc_num: the mean ELBO per token, the spread of the
estimate across seeds (the real standard deviation) and the standard error the estimator
reports, both per continuation, and the time per estimate.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
from provenance import git_commit
from transformers import AutoTokenizer

from dlm.data import corpus_windows
from dlm.evaluation.likelihood import elbo
from dlm.models import DiffusionLM


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", required=True)
    parser.add_argument("--windows", type=int, default=16)
    parser.add_argument("--prefix", type=int, default=128)
    parser.add_argument("--continuation", type=int, default=128)
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--mc-num", type=int, nargs="+", default=[1, 4, 16, 64, 256])
    args = parser.parse_args()
    tokenizer = AutoTokenizer.from_pretrained(args.model)
    model = DiffusionLM.from_pretrained(args.model).eval()
    pairs = corpus_windows(
        tokenizer, "python-stdlib", args.windows, args.prefix, args.continuation, seed=12345
    )
    commit = git_commit()
    print(
        f"model {args.model}, {args.windows} held-out windows ({args.prefix} context + "
        f"{args.continuation} scored characters), {args.seeds} seeds, torch "
        f"{torch.__version__} ({torch.get_num_threads()} threads), commit {commit}\n"
    )
    print(
        "| mc_num | ELBO nats/token (mean) | std across seeds | reported stderr | s per estimate |"
    )
    print("|---|---|---|---|---|")
    for mc in args.mc_num:
        start = time.perf_counter()
        runs = [elbo(model, pairs, mc_num=mc, batch_size=64, seed=s) for s in range(args.seeds)]
        seconds = (time.perf_counter() - start) / (args.seeds * len(pairs))
        per_token = statistics.mean(e.elbo / e.tokens for run in runs for e in run)
        spread = statistics.mean(
            statistics.stdev(run[i].elbo for run in runs) for i in range(len(pairs))
        )
        reported = statistics.mean(e.stderr for run in runs for e in run)
        shown = "–" if mc < 2 else f"{reported:.2f}"  # one sample has no standard error
        print(f"| {mc} | {per_token:.4f} | {spread:.2f} | {shown} | {seconds:.3f} |")


if __name__ == "__main__":
    main()
