"""Sampler speed and accuracy, side by side on one trained model and one set of prompts.

    python benchmarks/sampling.py --model DIR [--n 64] [--batch-size 16] [--device cuda] [--compile]

The model is one trained in this project: a task model (``recipes/sums/diffusion.yaml``: a
page of 64 sums whose 256 answer digits are infilled inside a pinned template; task and options
read from the checkpoint's ``train_config.yaml`` or given with ``--task``/``--task-options``;
tokens/s counts the 256 generated digits only) or, with
``--infill PREFIX MIDDLE SUFFIX``, a corpus model (``recipes/text/stdlib-char.yaml``) filling the
middle of held-out source files, scored by character accuracy. Every configuration decodes the
same held-out prompts:

  vanilla      whole canvas, one token per step, no cache
  blocks       + semi-autoregressive blocks of --block-length (steps still = tokens)
  prefix       + prefix KV cache
  dual         + dual KV cache
  threshold    blocks + confidence threshold --threshold (no cache)
  threshold-canvas  the threshold on the whole canvas (no blocks, no cache)
  all          blocks + dual cache + threshold

and reports accuracy (the task's verifier; for multi-puzzle Sudoku, the share of puzzles
solved), forward passes, wall time, generated tokens/s and the speed-up over vanilla. A warm-up
batch runs before timing. Prints a markdown table for benchmarks/RESULTS.md.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
from pathlib import Path

import torch
import yaml
from provenance import git_commit
from transformers import AutoTokenizer

from dlm.data import corpus_documents
from dlm.evaluation import batch_prompts, decode_answers
from dlm.evaluation.task_eval import template_canvas
from dlm.models import DiffusionLM
from dlm.sampling import generate
from dlm.tasks import get_task

CONFIGS = {
    "vanilla": {},
    "blocks": {"block_length": "B"},
    "prefix": {"block_length": "B", "cache": "prefix"},
    "dual": {"block_length": "B", "cache": "dual"},
    "threshold": {"block_length": "B", "threshold": "T"},
    "threshold-canvas": {"threshold": "T"},
    "all": {"block_length": "B", "cache": "dual", "threshold": "T"},
}


def infill_examples(tokenizer, documents, n, prefix, middle, suffix, seed):
    """Held-out windows prefix | middle | suffix (characters), at seeded offsets."""
    import random

    rng = random.Random(seed)
    width = prefix + middle + suffix
    long_docs = [d for d in documents if len(d) > width]
    out = []
    while len(out) < n:
        doc = rng.choice(long_docs)
        at = rng.randrange(0, len(doc) - width)
        window = doc[at : at + width]
        if window.count("?") > 4:
            continue
        ids = tokenizer.encode(window, add_special_tokens=False)
        out.append((ids[:prefix], ids[prefix : prefix + middle], ids[prefix + middle :]))
    return out


def run_infill(model, tokenizer, windows, batch_size, sampler):
    """Fill the middle of each window (prefix as prompt, suffix pinned); character accuracy."""
    correct = total = nfe = tokens = 0
    seconds = 0.0
    for start in range(0, len(windows), batch_size):
        chunk = windows[start : start + batch_size]
        ids = torch.tensor([w[0] for w in chunk])
        middle = len(chunk[0][1])
        fixed = torch.tensor([[-1] * middle + w[2] for w in chunk])
        out = generate(model, ids, max_new_tokens=fixed.shape[1], fixed=fixed, **sampler)
        got = out.generated[:, :middle].cpu()
        gold = torch.tensor([w[1] for w in chunk])
        correct += int((got == gold).sum())
        total += gold.numel()
        nfe += out.nfe
        seconds += out.wall_time
        tokens += gold.numel()
    return correct / total, nfe, seconds, tokens


def score(task, examples, answers) -> float:
    per = getattr(task, "puzzle_accuracy", None) or getattr(task, "sum_accuracy", None)
    if per is not None:
        return statistics.mean(per(e, a) for e, a in zip(examples, answers, strict=True))
    return statistics.mean(float(task.verify(e, a)) for e, a in zip(examples, answers, strict=True))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", required=True)
    parser.add_argument("--task", default=None)
    parser.add_argument("--task-options", default=None, help="JSON")
    parser.add_argument("--n", type=int, default=64)
    parser.add_argument("--seed", type=int, default=12345, help="seed of the held-out examples")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--block-length", type=int, default=32)
    parser.add_argument("--threshold", type=float, default=0.9)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--dtype", default="float32", choices=["float32", "bfloat16"])
    parser.add_argument(
        "--compile", action="store_true", help="also time vanilla and blocks with compile=True"
    )
    parser.add_argument("--configs", nargs="+", default=list(CONFIGS))
    parser.add_argument(
        "--infill",
        type=int,
        nargs=3,
        metavar=("PREFIX", "MIDDLE", "SUFFIX"),
        default=None,
        help="for a corpus model: fill MIDDLE characters between held-out PREFIX and SUFFIX",
    )
    args = parser.parse_args()

    model_dir = Path(args.model)
    train_config = {}
    for candidate in (model_dir / "train_config.yaml", model_dir.parent / "train_config.yaml"):
        if candidate.is_file():
            train_config = yaml.safe_load(candidate.read_text())
            break
    data_config = train_config.get("data", {})
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = DiffusionLM.from_pretrained(
        model_dir, dtype=getattr(torch, args.dtype), device=args.device
    )
    if args.infill:
        corpus = data_config.get("corpus") or "python-stdlib"
        windows = infill_examples(
            tokenizer, corpus_documents(corpus, "eval"), args.n, *args.infill, args.seed
        )
        max_new = args.infill[1]
        to_fill = max_new
        described = f"{corpus} infilling {args.infill}"
    else:
        task_name = args.task or data_config.get("task")
        task_options = (
            json.loads(args.task_options)
            if args.task_options
            else data_config.get("task_options", {})
        )
        task = get_task(task_name, **task_options)
        examples = task.generate(args.n, seed=args.seed)
        max_new = (
            max(len(tokenizer.encode(e.target, add_special_tokens=False)) for e in examples) + 1
        )
        to_fill = max_new
        if task.slots is not None:  # infill the slots of a pinned template
            max_new = len(tokenizer.encode(examples[0].target, add_special_tokens=False))
            to_fill = len(task.slots(examples[0]))
        described = f"task {task_name} {task_options}"

    def run(sampler: dict, limit: int | None = None) -> tuple[float, int, float, int]:
        if args.infill:
            return run_infill(model, tokenizer, windows[:limit], args.batch_size, sampler)
        answers, nfe, seconds, tokens = [], 0, 0.0, 0
        for start in range(0, len(examples[:limit]), args.batch_size):
            chunk = examples[start : start + args.batch_size]
            ids, mask = batch_prompts(tokenizer, [e.prompt for e in chunk])
            fixed = template_canvas(tokenizer, task, chunk)  # None unless answers sit in a template
            out = generate(model, ids, mask, max_new_tokens=max_new, fixed=fixed, **sampler)
            answers += decode_answers(tokenizer, out.generated)
            nfe += out.nfe
            seconds += out.wall_time
            # generated tokens only: a template's pinned tokens are not generated
            tokens += out.generated_tokens if fixed is None else to_fill * len(chunk)
        return score(task, examples[: len(answers)], answers), nfe, seconds, tokens

    configs = {name: CONFIGS[name] for name in args.configs}
    if args.compile:
        configs["vanilla+compile"] = {"compile": True}
        configs["threshold+compile"] = {"block_length": "B", "threshold": "T", "compile": True}
    rows = []
    for name, raw in configs.items():
        chosen = {
            k: {"B": args.block_length, "T": args.threshold}.get(v, v) for k, v in raw.items()
        }
        sampler = {"steps": to_fill, "policy": "confidence", **chosen}
        run(sampler, limit=min(args.batch_size, 4))  # warm-up (and compilation), not timed
        accuracy, nfe, seconds, tokens = run(sampler)
        rows.append(
            {
                "config": name,
                "accuracy": accuracy,
                "nfe": nfe,
                "seconds": seconds,
                "tokens_per_s": tokens / seconds,
                "tokens_per_forward": tokens / nfe,
            }
        )
        print(json.dumps(rows[-1]), flush=True)

    base = next((r for r in rows if r["config"] == "vanilla"), rows[0])
    commit = git_commit()
    device = (
        torch.cuda.get_device_name()
        if args.device.startswith("cuda")
        else (platform.processor() or "cpu")
    )
    print(
        f"\nmodel {model_dir}, {described}, {args.n} prompts x {to_fill} new tokens, batch "
        f"{args.batch_size}, block {args.block_length}, threshold {args.threshold}, {args.dtype} on {device} "
        f"({torch.get_num_threads()} threads), torch {torch.__version__}, commit {commit}\n"
    )
    print("| config | accuracy | NFE | tokens/forward | wall s | tokens/s | speed-up |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['config']} | {r['accuracy']:.1%} | {r['nfe']} | {r['tokens_per_forward']:.2f} | {r['seconds']:.2f} | "
            f"{r['tokens_per_s']:.0f} | {r['tokens_per_s'] / base['tokens_per_s']:.1f}x |"
        )


if __name__ == "__main__":
    main()
