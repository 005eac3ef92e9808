"""The SFT ablation of random truncation: answer length and accuracy with and without it.

    python benchmarks/sft_truncation.py [--recipe recipes/countdown/cd3.yaml] \
        [--seq-len 96] [--steps 600] [--seeds 0 1] [--parallel 2]

Both arms train the same recipe from scratch on the same data, with ``data.seq_len`` raised
well past the longest example so that padding is most of every row (the situation
Dream-Coder's random truncation is for: ``max_length`` 4000 for responses of a few hundred
tokens); one arm sets ``data.truncation=random``. Reported per run, on the held-out examples
sampled with the model's saved settings: the verified accuracy, the mean answer length (its
text's tokens plus the EOS) against the gold answers' mean, and the share of empty answers
(the model ends at once, the PAD flood Dream-Coder's penalty fights at inference).
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import statistics
import time
from pathlib import Path

from parallel_runs import launch, run_all, spread
from provenance import git_commit

ROOT = Path(__file__).resolve().parents[1]
ARMS = ("none", "random")


def worker(arm: str, seed: int, args: argparse.Namespace) -> dict:
    """Train one arm with one seed, evaluate it, return its row (its own process)."""
    import torch

    from dlm.checkpoints import load_model
    from dlm.data import batch_prompts, decode_answers
    from dlm.sampling import generate
    from dlm.training import load_train_config, train

    out = Path(args.out) / f"{arm}-s{seed}"
    overrides = [
        f"data.seq_len={args.seq_len}",
        f"model.max_positions={args.seq_len + args.answer_room}",
        f"data.truncation={arm}",
        f"optim.max_steps={args.steps}",
        f"seed={seed}",
        f"output_dir={out}",
        "progress=false",
        *args.set,
    ]
    config = load_train_config(str(ROOT / args.recipe), overrides)
    result, prepared = train(config)
    model = load_model(result.model_dir).eval()
    tokenizer, task, examples = prepared.tokenizer, prepared.task, prepared.eval_examples
    answers = []
    with torch.no_grad():
        for start in range(0, len(examples), 64):
            chunk = examples[start : start + 64]
            ids, mask = batch_prompts(tokenizer, [e.prompt for e in chunk])
            region = generate(model, ids, mask, max_new_tokens=task.max_answer_tokens).generated
            answers += decode_answers(tokenizer, region)
    # tokens of the answer text plus its EOS, as for the gold targets
    lengths = [len(tokenizer.encode(a, add_special_tokens=False)) + 1 for a in answers]
    gold = [len(tokenizer.encode(e.target, add_special_tokens=False)) + 1 for e in examples]
    correct = [task.verify(e, a) for e, a in zip(examples, answers)]
    return {
        "arm": arm,
        "seed": seed,
        "accuracy": sum(correct) / len(correct),
        "answer_tokens": statistics.mean(lengths),
        "gold_tokens": statistics.mean(gold),
        "empty": sum(not a for a in answers) / len(answers),
        "seconds_per_step": result.train_seconds / max(result.steps, 1),
    }


def _launch(arm: str, seed: int, args: argparse.Namespace):
    argv = ["--worker", arm, str(seed), "--recipe", args.recipe, "--seq-len", str(args.seq_len)]
    argv += ["--steps", str(args.steps), "--out", args.out, "--answer-room", str(args.answer_room)]
    return launch(__file__, argv + [f"--set={o}" for o in args.set])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recipe", default="recipes/countdown/cd3.yaml")
    parser.add_argument("--seq-len", type=int, default=96, help="data.seq_len of both arms")
    parser.add_argument("--answer-room", type=int, default=0, help="extra model positions")
    parser.add_argument("--steps", type=int, default=600)
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1])
    parser.add_argument("--parallel", type=int, default=2)
    parser.add_argument("--out", default="runs/sft-truncation")
    parser.add_argument("--json", help="also write the rows as JSON")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--worker", nargs=2, metavar=("ARM", "SEED"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(worker(args.worker[0], int(args.worker[1]), args)))
        return
    started = time.perf_counter()
    jobs = [(arm, seed) for seed in args.seeds for arm in ARMS]
    rows = run_all(jobs, lambda arm, seed: _launch(arm, seed, args), args.parallel)
    print(
        f"# {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
        f"{args.parallel} runs at a time, OMP_NUM_THREADS=1 each; {datetime.date.today()}; "
        f"{time.perf_counter() - started:.0f} s in all; commit {git_commit()}; {args.recipe}, seq_len {args.seq_len}, "
        f"{args.steps} steps, seeds {args.seeds}; overrides {args.set}\n"
    )
    print("| truncation | held-out accuracy | answer tokens (gold) | empty answers | s/step |")
    print("|---|---:|---:|---:|---:|")
    for arm in ARMS:
        mine = [r for r in rows if r["arm"] == arm]
        print(
            f"| {arm} | {spread([r['accuracy'] for r in mine], '.3f')} "
            f"| {spread([r['answer_tokens'] for r in mine], '.1f')} ({mine[0]['gold_tokens']:.1f}) "
            f"| {spread([r['empty'] for r in mine], '.3f')} "
            f"| {spread([r['seconds_per_step'] for r in mine], '.3f')} |"
        )
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1) + "\n")


if __name__ == "__main__":
    main()
