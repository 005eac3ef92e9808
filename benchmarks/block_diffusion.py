"""Block diffusion against full attention, side by side in one run.

    python benchmarks/block_diffusion.py speed --full DIR --block DIR [--task sums|text]
        [--n 16] [--batch-sizes 1 8] [--threshold 0.9]
    python benchmarks/block_diffusion.py adapt --ar DIR --a2d DIR --block DIR [--mc-num 16]

``speed``: a full-attention model (``--full``) and a block-diffusion model (``--block``) of the
same size, data and steps decode the same held-out prompts. ``--task sums`` reads the task from
the checkpoint (``recipes/sums/long.yaml``: a page of 64 sums, 256 answer digits infilled in a
pinned template, scored by the share of sums right); ``--task text`` continues held-out Python
source (``--prompt`` characters, then ``--new`` generated ones), scored by character accuracy
against the file's own continuation. Configurations:

  full vanilla         the whole canvas, one token per step, no cache
  full blocks+dual+T   blocks of ``--block-length``, Fast-dLLM's dual cache, threshold T
  block none+T         the block model with no cache (every step runs the whole canvas)
  block exact          its exact cache of committed blocks, one token per step
  block exact+T        the exact cache and the threshold
  block subdual+T      Fast-dLLM v2's sub-block cache (sub-blocks of ``--sub-block``) and T

For each: accuracy, forward passes (NFE), generated tokens per forward, wall seconds, tokens/s
and the speed-up over full vanilla, and the cache refresh cost: the seconds spent in the full
forwards a full-attention cache runs at every block start (``CachedStepForward.refresh``, timed
by wrapping it) and their share of the wall time. A block model's exact cache never refreshes;
the first call of each block runs the block committed just before it once more, to write its
keys, and that is counted in its wall time. A warm-up batch runs before timing.

``adapt``: AR-to-block adaptation against the full-attention A2D, both from the same AR parent
for the same steps (``recipes/text/stdlib-char-a2d.yaml`` / ``stdlib-char-block.yaml``): the
held-out NLL bound (-ELBO per character, ``benchmarks/a2d.py``'s windows and estimator) and
the infilling table of the A2D benchmark (single statements blanked in held-out functions).
"""

from __future__ import annotations

import argparse
import json
import platform
import random
import time
from pathlib import Path

import torch
import yaml
from a2d import infill, infill_blanks, nll_per_char
from provenance import git_commit
from transformers import AutoTokenizer

import dlm.models.cache as kv_cache
from dlm.data import corpus_documents, corpus_windows
from dlm.evaluation import batch_prompts, decode_answers
from dlm.evaluation.task_eval import template_canvas
from dlm.models import DiffusionLM
from dlm.sampling import generate
from dlm.tasks import get_task
from sampling import score

CONFIGS = (  # (label, which model, sampler options: B = block length, S = sub-block, T)
    ("full vanilla", "full", {"cache": "none"}),
    ("full blocks+dual+T", "full", {"block_length": "B", "cache": "dual", "threshold": "T"}),
    ("block none+T", "block", {"cache": "none", "threshold": "T"}),
    ("block exact", "block", {"cache": "prefix"}),
    ("block exact+T", "block", {"cache": "prefix", "threshold": "T"}),
    ("block subdual+T", "block", {"block_length": "S", "cache": "dual", "threshold": "T"}),
)


class RefreshTimer:
    """Seconds and calls of the full-attention caches' refresh forwards (a wrapper, no sync)."""

    def __init__(self) -> None:
        self.seconds, self.calls = 0.0, 0
        self._original = kv_cache.CachedStepForward.refresh

    def __enter__(self) -> RefreshTimer:
        original, timer = self._original, self

        def timed(step_forward, tokens):
            start = time.perf_counter()
            logits = original(step_forward, tokens)
            if logits.is_cuda:
                torch.cuda.synchronize()
            timer.seconds += time.perf_counter() - start
            timer.calls += 1
            return logits

        kv_cache.CachedStepForward.refresh = timed
        return self

    def __exit__(self, *exc) -> None:
        kv_cache.CachedStepForward.refresh = self._original


def _train_config(model_dir: Path) -> dict:
    for candidate in (model_dir / "train_config.yaml", model_dir.parent / "train_config.yaml"):
        if candidate.is_file():
            return yaml.safe_load(candidate.read_text())
    return {}


def sums_runner(args, model_dir: Path):
    """A function (model, sampler, batch, limit) -> (accuracy, nfe, seconds, tokens)."""
    data = _train_config(model_dir).get("data", {})
    task = get_task(data["task"], **data.get("task_options", {}))
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    examples = task.generate(args.n, seed=args.seed)
    width = len(tokenizer.encode(examples[0].target, add_special_tokens=False))
    to_fill = len(task.slots(examples[0]))

    def run(model, sampler, batch, limit=None):
        answers, nfe, seconds = [], 0, 0.0
        chosen = examples[:limit]
        for start in range(0, len(chosen), batch):
            chunk = chosen[start : start + batch]
            ids, mask = batch_prompts(tokenizer, [e.prompt for e in chunk])
            fixed = template_canvas(tokenizer, task, chunk)
            out = generate(model, ids, mask, max_new_tokens=width, fixed=fixed, steps=to_fill, **sampler)
            answers += decode_answers(tokenizer, out.generated)
            nfe += out.nfe
            seconds += out.wall_time
        return score(task, chosen, answers), nfe, seconds, to_fill * len(chosen)

    return run, f"task sums {data.get('task_options')}, {to_fill} digits infilled per page"


def text_runner(args, model_dir: Path):
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    rng = random.Random(args.seed)
    docs = [d for d in corpus_documents("python-stdlib", "eval") if len(d) > args.prompt + args.new]
    windows = []
    while len(windows) < args.n:
        doc = rng.choice(docs)
        at = rng.randrange(0, len(doc) - args.prompt - args.new)
        ids = tokenizer.encode(doc[at : at + args.prompt + args.new], add_special_tokens=False)
        windows.append((ids[: args.prompt], ids[args.prompt :]))

    def run(model, sampler, batch, limit=None):
        right = total = nfe = 0
        seconds = 0.0
        chosen = windows[:limit]
        for start in range(0, len(chosen), batch):
            chunk = chosen[start : start + batch]
            prompts = torch.tensor([w[0] for w in chunk])
            out = generate(model, prompts, max_new_tokens=args.new, steps=args.new, stop_at_eos=False, **sampler)
            got = out.generated.cpu()
            gold = torch.tensor([w[1] for w in chunk])
            right += int((got == gold).sum())
            total += gold.numel()
            nfe += out.nfe
            seconds += out.wall_time
        return right / total, nfe, seconds, total

    return run, f"python-stdlib continuation, {args.prompt} characters then {args.new} generated"


def speed(args) -> None:
    models = {
        "full": DiffusionLM.from_pretrained(args.full).eval(),
        "block": DiffusionLM.from_pretrained(args.block).eval(),
    }
    block_size = models["block"].config.block_size
    make = sums_runner if args.task == "sums" else text_runner
    run, described = make(args, Path(args.full))
    values = {"B": args.block_length, "S": args.sub_block, "T": args.threshold}
    rows = []
    for batch in args.batch_sizes:
        base = None
        for label, which, raw in CONFIGS:
            sampler = {"policy": "confidence", **{k: values.get(v, v) for k, v in raw.items()}}
            model = models[which]
            run(model, sampler, batch, limit=min(batch, 2))  # warm-up, not timed
            with RefreshTimer() as refresh:
                accuracy, nfe, seconds, tokens = run(model, sampler, batch)
            row = {
                "batch": batch,
                "config": label,
                "accuracy": accuracy,
                "nfe": nfe,
                "tokens_per_forward": tokens / nfe,
                "seconds": seconds,
                "tokens_per_s": tokens / seconds,
                "refresh_s": refresh.seconds,
                "refreshes": refresh.calls,
            }
            base = base or row
            row["speedup"] = row["tokens_per_s"] / base["tokens_per_s"]
            rows.append(row)
            print(json.dumps(row), flush=True)
    print(
        f"\n{described}; {args.n} prompts, full-attention blocks of {args.block_length}, block "
        f"model blocks of {block_size} (sub-blocks {args.sub_block}), threshold {args.threshold}; "
        f"{platform.processor() or platform.machine()}, {torch.get_num_threads()} torch threads, "
        f"torch {torch.__version__}, commit {git_commit()}\n"
    )
    print(
        "| batch | config | accuracy | NFE | tokens/forward | wall s | tokens/s | speed-up "
        "| refresh s (share) |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        share = r["refresh_s"] / r["seconds"] if r["seconds"] else 0.0
        refresh = f"{r['refresh_s']:.2f} ({share:.0%}, {r['refreshes']} calls)" if r["refreshes"] else "–"
        print(
            f"| {r['batch']} | {r['config']} | {r['accuracy']:.1%} | {r['nfe']} "
            f"| {r['tokens_per_forward']:.2f} | {r['seconds']:.2f} | {r['tokens_per_s']:.0f} "
            f"| {r['speedup']:.1f}x | {refresh} |"
        )


ORDERS = {
    "confidence": {"policy": "confidence"},
    "left to right": {"policy": "confidence", "block_length": 1},
}


def adapt(args) -> None:
    tokenizer = AutoTokenizer.from_pretrained(args.ar)
    windows = corpus_windows(tokenizer, "python-stdlib", args.windows, 256, 256, seed=12345)
    blanks = infill_blanks(args.blanks, 256, 64, 8, 48, seed=7)
    models = {
        "AR parent": DiffusionLM.from_pretrained(args.ar).eval(),
        "A2D (full attention)": DiffusionLM.from_pretrained(args.a2d).eval(),
        "block A2D": DiffusionLM.from_pretrained(args.block).eval(),
    }
    print(
        f"Held-out text: {args.windows} windows of 256 context + 256 scored characters, "
        f"mc_num {args.mc_num}; infilling: {len(blanks)} statements of 8-48 characters, 256 "
        f"before and 64 after pinned; commit {git_commit()}, {platform.machine()}, "
        f"{torch.get_num_threads()} torch threads\n"
    )
    print("| model | NLL bound (nats/char) | order | exact statement | edit similarity | character accuracy |")
    print("|---|---|---|---|---|---|")
    for label, model in models.items():
        nll, err = nll_per_char(model, windows, 1 if model.is_autoregressive else args.mc_num)
        orders = {"greedy, code before only": {}} if model.is_autoregressive else ORDERS
        for order, sampler in orders.items():
            r = infill(model, tokenizer, blanks, 32, sampler)
            print(
                f"| {label} | {nll:.3f} ± {err:.3f} | {order} | {r['exact']:.1%} "
                f"| {r['edit_similarity']:.3f} | {r['char_accuracy']:.1%} |",
                flush=True,
            )


def main() -> None:
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="part", required=True)
    s = sub.add_parser("speed")
    s.add_argument("--full", required=True)
    s.add_argument("--block", required=True)
    s.add_argument("--task", choices=["sums", "text"], default="sums")
    s.add_argument("--n", type=int, default=16)
    s.add_argument("--seed", type=int, default=12345)
    s.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 8])
    s.add_argument("--block-length", type=int, default=32)
    s.add_argument("--sub-block", type=int, default=8)
    s.add_argument("--threshold", type=float, default=0.9)
    s.add_argument("--prompt", type=int, default=256)
    s.add_argument("--new", type=int, default=256)
    a = sub.add_parser("adapt")
    a.add_argument("--ar", required=True)
    a.add_argument("--a2d", required=True)
    a.add_argument("--block", required=True)
    a.add_argument("--windows", type=int, default=48)
    a.add_argument("--mc-num", type=int, default=16)
    a.add_argument("--blanks", type=int, default=200)
    args = parser.parse_args()
    torch.manual_seed(0)
    if args.part == "speed":
        speed(args)
    else:
        adapt(args)


if __name__ == "__main__":
    main()
