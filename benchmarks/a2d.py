"""AR-to-diffusion adaptation (DiffuGPT / DiffuLLaMA) at small scale, against diffusion from scratch.

    python benchmarks/a2d.py                    # train the three models, then evaluate
    python benchmarks/a2d.py --reuse            # evaluate models already under runs/bench/a2d

Three runs of the same character-level backbone on the Python standard library's source
(``recipes/text/stdlib-char*.yaml``), each ``--steps`` optimizer steps of the same batch:

* ``ar``: next-token pretraining, causal (the "published AR model" of the paper's setting);
* ``a2d``: that AR model continued as a diffusion LM (shift kept, attention annealed from causal
  to bidirectional, 1/t weighting), ``--steps`` steps;
* ``scratch``: a diffusion LM from random weights for ``2 * --steps`` steps, so that its curve
  covers both the same diffusion tokens as ``a2d`` (step ``--steps``) and the same total tokens
  as ``ar`` + ``a2d`` (step ``2 * --steps``).

For every saved checkpoint of ``a2d`` and ``scratch`` it reports the diffusion NLL bound
(-ELBO per character, LLaDA's Monte Carlo estimator with ``--mc-num`` samples) of held-out
text windows, and the AR model's exact NLL on the same windows; for the final models, code
infilling on held-out files: one single-line statement in a function body is blanked (its
indentation, the code before and the code after stay in place; nothing is reordered) and
filled at its true length, one character per step, in confidence order or left to right; the AR
model continues the code before greedily (it cannot see the code after). Reported: exact
statement match, edit similarity (difflib's ratio, as code-completion benchmarks report it) and
character accuracy at each position.
"""

from __future__ import annotations

import argparse
import ast
import datetime
import difflib
import platform
import random
import time
from collections import defaultdict
from pathlib import Path

import torch
from provenance import git_commit
from transformers import AutoTokenizer

from dlm.data import corpus_documents, corpus_windows
from dlm.evaluation.likelihood import elbo
from dlm.models import DiffusionLM
from dlm.sampling import generate
from dlm.training import load_train_config, train

ROOT = Path("runs/bench/a2d")
Pair = tuple[list[int], list[int]]
Blank = tuple[str, str, str]  # before, statement, after


def _statements(source: str) -> list[tuple[int, int]]:
    """(line index, column) of single-line statements inside function bodies, no docstrings."""
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError):
        return []
    found = []
    for fn in ast.walk(tree):
        if not isinstance(fn, ast.FunctionDef | ast.AsyncFunctionDef):
            continue
        for stmt in fn.body:
            if stmt.lineno != stmt.end_lineno:
                continue
            if isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Constant):
                continue  # docstrings
            found.append((stmt.lineno - 1, stmt.col_offset))
    return found


def infill_blanks(
    n: int, before: int, after: int, min_len: int, max_len: int, seed: int, per_file: int = 12
) -> list[Blank]:
    """Seeded held-out statements to fill, with ``before``/``after`` characters around them."""
    rng = random.Random(seed)
    docs = corpus_documents("python-stdlib", "eval")
    rng.shuffle(docs)
    blanks: list[Blank] = []
    for doc in docs:
        lines = doc.split("\n")
        starts = [0]
        for line in lines:
            starts.append(starts[-1] + len(line) + 1)
        spots = _statements(doc)
        rng.shuffle(spots)
        for index, col in spots[:per_file]:  # spread over many files
            line = lines[index]
            statement = line[col:].rstrip()
            if not min_len <= len(statement) <= max_len or "?" in statement:
                continue
            begin = starts[index] + col
            end = begin + len(statement)
            if begin < before or end + after > len(doc):
                continue
            blanks.append((doc[begin - before : begin], statement, doc[end : end + after]))
        if len(blanks) >= n:
            break
    return blanks[:n]


@torch.no_grad()
def infill(
    model: DiffusionLM, tokenizer, blanks: list[Blank], batch_size: int, sampler: dict
) -> dict:
    """Fill every blank at its true length; exact-statement and character accuracy."""
    groups: dict[int, list[Blank]] = defaultdict(list)
    for b in blanks:
        groups[len(b[1])].append(b)
    exact = correct = chars = 0
    similarity = 0.0
    start = time.perf_counter()
    for length, group in sorted(groups.items()):
        for at in range(0, len(group), batch_size):
            chunk = group[at : at + batch_size]
            enc = [tokenizer.encode(part, add_special_tokens=False) for b in chunk for part in b]
            before = torch.tensor(enc[0::3])
            gold = torch.tensor(enc[1::3])
            if model.is_autoregressive:  # continues the code before; never sees the code after
                out = generate(model, before, max_new_tokens=length, **sampler)
            else:
                fixed = torch.tensor([[-1] * length + after for after in enc[2::3]])
                out = generate(
                    model, before, max_new_tokens=fixed.shape[1], fixed=fixed, steps=length, **sampler
                )
            got = out.generated[:, :length].cpu()
            correct += int((got == gold).sum())
            exact += int((got == gold).all(dim=1).sum())
            chars += gold.numel()
            for row, (_, statement, _) in zip(got.tolist(), chunk, strict=True):
                text = tokenizer.decode(row, skip_special_tokens=True)
                similarity += difflib.SequenceMatcher(None, text, statement).ratio()
    return {
        "exact": exact / len(blanks),
        "char_accuracy": correct / chars,
        "edit_similarity": similarity / len(blanks),
        "n": len(blanks),
        "seconds": time.perf_counter() - start,
    }


def nll_per_char(model: DiffusionLM, windows: list[Pair], mc_num: int) -> tuple[float, float]:
    """Mean -ELBO per scored character (exact NLL for an AR model) and its standard error."""
    estimates = elbo(model, windows, mc_num=mc_num, batch_size=64, seed=0)
    tokens = sum(e.tokens for e in estimates)
    nll = -sum(e.elbo for e in estimates) / tokens
    stderr = sum(e.stderr**2 for e in estimates) ** 0.5 / tokens
    return nll, stderr


def _train(recipe: str, out: Path, overrides: list[str], reuse: bool) -> float | None:
    if reuse and (out / "model").is_dir():
        return None
    config = load_train_config(recipe, [*overrides, f"output_dir={out}", "progress=false"])
    start = time.perf_counter()
    train(config)
    return time.perf_counter() - start


def _checkpoints(run: Path, final_step: int) -> list[tuple[int, Path]]:
    found = []
    for path in run.glob("checkpoint-*"):
        found.append((int(path.name.split("-")[1]), path / "model"))
    found.append((final_step, run / "model"))
    return sorted(found)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--eval-every", type=int, default=250)
    parser.add_argument("--windows", type=int, default=48)
    parser.add_argument("--context", type=int, default=256)
    parser.add_argument("--scored", type=int, default=256)
    parser.add_argument("--mc-num", type=int, default=16)
    parser.add_argument("--blanks", type=int, default=200)
    parser.add_argument("--reuse", action="store_true", help="evaluate models already trained")
    parser.add_argument(
        "--parts", nargs="+", choices=["curve", "infill"], default=["curve", "infill"]
    )
    args = parser.parse_args()
    torch.manual_seed(0)
    steps, every = args.steps, args.eval_every
    keep = f"keep_last={2 * steps // every + 1}"
    ar, a2d, scratch = ROOT / "ar", ROOT / "a2d", ROOT / "scratch"
    seconds = {
        "ar": _train(
            "recipes/text/stdlib-char-ar.yaml", ar, [f"optim.max_steps={steps}"], args.reuse
        ),
        "a2d": _train(
            "recipes/text/stdlib-char-a2d.yaml",
            a2d,
            [f"model.init={ar / 'model'}", f"optim.max_steps={steps}", f"save_every={every}", keep],
            args.reuse,
        ),
        "scratch": _train(
            "recipes/text/stdlib-char.yaml",
            scratch,
            [f"optim.max_steps={2 * steps}", f"save_every={every}", keep],
            args.reuse,
        ),
    }
    commit = git_commit()
    print(
        f"### AR-to-diffusion adaptation — {datetime.date.today()} — commit {commit}\n\n"
        f"Command: `python benchmarks/a2d.py --steps {steps} --eval-every {every}`; "
        f"{platform.machine()}, {torch.get_num_threads()} torch threads, torch {torch.__version__}. "
        f"Training seconds: "
        + ", ".join(f"{k} {'reused' if v is None else f'{v:.0f}'}" for k, v in seconds.items())
        + "\n"
    )
    tokenizer = AutoTokenizer.from_pretrained(ar / "model")
    curves = {
        "a2d": dict(_checkpoints(a2d, steps)),
        "scratch": dict(_checkpoints(scratch, 2 * steps)),
    }
    if "curve" in args.parts:
        _curve_table(args, tokenizer, ar, curves)
    if "infill" in args.parts:
        _infill_table(args, tokenizer, ar, a2d, curves["scratch"])


def _curve_table(args, tokenizer, ar: Path, curves: dict[str, dict[int, Path]]) -> None:
    steps = args.steps
    windows = corpus_windows(
        tokenizer, "python-stdlib", args.windows, args.context, args.scored, seed=12345
    )
    ar_model = DiffusionLM.from_pretrained(ar / "model").eval()
    ar_nll, _ = nll_per_char(ar_model, windows, 1)
    print(
        f"Held-out text: {args.windows} windows of {args.context} context + {args.scored} scored "
        f"characters; diffusion NLL bound = -ELBO per character (mc_num {args.mc_num}, "
        f"± standard error). The AR model's exact NLL on the same characters after {steps} "
        f"steps: **{ar_nll:.3f}** nats/char.\n"
    )
    print(
        "| optimizer steps (of each model's own run) | total steps seen | A2D NLL bound "
        "| scratch NLL bound |"
    )
    print("|---|---|---|---|")
    measured: dict[tuple[str, int], str] = {}
    for name, points in curves.items():
        for step, path in points.items():
            model = DiffusionLM.from_pretrained(path).eval()
            nll, err = nll_per_char(model, windows, args.mc_num)
            measured[name, step] = f"{nll:.3f} ± {err:.3f}"
    for step in sorted({s for _, s in measured}):
        a = measured.get(("a2d", step), "–")
        s = measured.get(("scratch", step), "–")
        total = f"{steps} AR + {step}" if ("a2d", step) in measured else f"{step}"
        print(f"| {step} | {total} | {a} | {s} |")


ORDERS = {  # label: sampler options; ``steps`` is set to the blank's length
    "confidence": {"policy": "confidence"},
    "left to right": {"policy": "confidence", "block_length": 1},
}


def _infill_table(args, tokenizer, ar: Path, a2d: Path, scratch: dict[int, Path]) -> None:
    steps = args.steps
    blanks = infill_blanks(args.blanks, 256, 64, 8, 48, seed=7)
    print(
        f"\nInfilling: {len(blanks)} single-line statements of 8-48 characters in held-out "
        "function bodies, 256 characters before and 64 after pinned in place, filled at their "
        "true length, one character per step, in confidence order or left to right (blocks of "
        "one). The AR model continues the code before greedily and never sees the code after.\n"
    )
    print(
        "| model | diffusion steps | order | exact statement | edit similarity "
        "| character accuracy | eval s |"
    )
    print("|---|---|---|---|---|---|---|")
    ar_row = infill(DiffusionLM.from_pretrained(ar / "model").eval(), tokenizer, blanks, 32, {})
    _infill_row("AR, code before only", "–", "left to right (greedy)", ar_row)
    for label, path, step in (
        ("A2D (from the AR model)", a2d / "model", steps),
        ("scratch, same diffusion steps", scratch.get(steps), steps),
        ("scratch, same total steps", scratch.get(2 * steps), 2 * steps),
    ):
        if path is None:
            continue
        model = DiffusionLM.from_pretrained(path).eval()
        for order, sampler in ORDERS.items():
            _infill_row(label, str(step), order, infill(model, tokenizer, blanks, 32, sampler))


def _infill_row(label: str, step: str, order: str, r: dict) -> None:
    print(
        f"| {label} | {step} | {order} | {r['exact']:.1%} | {r['edit_similarity']:.3f} "
        f"| {r['char_accuracy']:.1%} | {r['seconds']:.0f} |"
    )


if __name__ == "__main__":
    main()
