"""Reasoning and planning suite: diffusion against AR at the same size, data and budget.

    python benchmarks/reasoning.py path            # recipes/path/{diffusion,ar}.yaml
    python benchmarks/reasoning.py cd3 cd4 sat5 sat7 sudoku-easy mult4
    python benchmarks/reasoning.py ablation        # MGDM switches on 6x6 Sudoku
    python benchmarks/reasoning.py path-adapted    # AR, then that model adapted to diffusion
    python benchmarks/reasoning.py path --reuse    # evaluate models already trained
    OMP_NUM_THREADS=1 python benchmarks/reasoning.py cd3 --only diffusion &   # a pair side by side,
    OMP_NUM_THREADS=1 python benchmarks/reasoning.py cd3 --only AR            # one core each
    python benchmarks/reasoning.py sat5 --set optim.max_steps=1000             # recipe overrides

Each suite trains its recipes (under runs/bench/SUITE/NAME, or reuses them with --reuse),
evaluates every model on the recipe's held-out split with the task's verifier, and prints one
markdown table for benchmarks/RESULTS.md: accuracy, accuracy per bucket (planning distance,
n, digits ...), forward passes, training and evaluation seconds. Diffusion models decode with
the confidence policy, one token per step, unless the entry names another sampler; AR models
decode greedily.
"""

from __future__ import annotations

import argparse
import datetime
import json
import platform
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from provenance import git_commit

from dlm.evaluation import evaluate_task
from dlm.models import DiffusionLM
from dlm.tasks import get_task
from dlm.training import load_train_config, train
from dlm.training.setup import prepare_data


@dataclass
class Run:
    name: str
    recipe: str
    overrides: list[str] = field(default_factory=list)
    # (label, sampler options) pairs; an AR model ignores them and decodes greedily
    samplers: list[tuple[str, dict[str, Any]]] = field(default_factory=lambda: [("", {})])


def _pair(prefix: str, diffusion: str, ar: str, **extra: Any) -> list[Run]:
    return [Run(f"{prefix} diffusion", diffusion, **extra), Run(f"{prefix} AR", ar)]


MGDM = [
    "diffusion.schedule=discrete",
    "diffusion.num_steps=20",
    "diffusion.weighting=linear",
    "diffusion.token_reweight=true",
    "diffusion.reweight_beta=1.0",
]
DROP_REWEIGHT = [*MGDM[:-2], "diffusion.token_reweight=false"]
ELBO_WEIGHTS = [*MGDM[:2], "diffusion.weighting=elbo", *MGDM[3:]]
REMASK_20 = {"policy": "remask", "steps": 20}

SUITES: dict[str, list[Run]] = {
    "path": _pair("path", "recipes/path/diffusion.yaml", "recipes/path/ar.yaml"),
    # in this order: the adapted run starts from the AR run's checkpoint
    "path-adapted": [
        Run("path AR", "recipes/path/ar.yaml"),
        Run(
            "path adapted diffusion",
            "recipes/path/adapted.yaml",
            ["model.init=runs/bench/path-adapted/path_AR/model"],
        ),
    ],
    "cd3": _pair("CD3", "recipes/countdown/cd3.yaml", "recipes/countdown/cd3-ar.yaml"),
    "cd4": _pair("CD4", "recipes/countdown/cd4.yaml", "recipes/countdown/cd4-ar.yaml"),
    "sat5": _pair("SAT n=5", "recipes/sat/n5.yaml", "recipes/sat/n5-ar.yaml"),
    "sat7": _pair("SAT n=7", "recipes/sat/n7.yaml", "recipes/sat/n7-ar.yaml"),
    "sudoku-easy": _pair("Sudoku easy", "recipes/sudoku/easy.yaml", "recipes/sudoku/easy-ar.yaml"),
    "mult4": [
        Run(
            "4x4 CoT diffusion",
            "recipes/multiplication/4x4.yaml",
            samplers=[
                ("greedy", {}),
                ("T=0.5, 1 sample", {"temperature": 0.5, "seed": 0}),
                ("T=0.5, SC@5", {"temperature": 0.5, "seed": 0, "samples": 5, "vote": True}),
            ],
        ),
        Run("4x4 CoT AR", "recipes/multiplication/4x4-ar.yaml"),
    ],
    "ablation": [
        Run(
            "linear w + token reweighting",
            "recipes/sudoku/diffusion.yaml",
            MGDM,
            samplers=[
                ("remask T=20", REMASK_20),
                ("random T=20", {"policy": "random", "steps": 20}),
                ("remask T=1", {"policy": "remask", "steps": 1}),
            ],
        ),
        Run(
            "linear w, no token reweighting",
            "recipes/sudoku/diffusion.yaml",
            DROP_REWEIGHT,
            samplers=[("remask T=20", REMASK_20)],
        ),
        Run(
            "1/t w + token reweighting",
            "recipes/sudoku/diffusion.yaml",
            ELBO_WEIGHTS,
            samplers=[("remask T=20", REMASK_20)],
        ),
    ],
}


def _evaluate(run: Run, config, model: DiffusionLM, prepared) -> list[dict[str, Any]]:
    task = get_task(config.data.task, **config.data.task_options)
    rows = []
    for label, sampler in run.samplers if not model.is_autoregressive else [("greedy", {})]:
        options = dict(sampler)
        samples, vote = options.pop("samples", 1), options.pop("vote", False)
        start = time.perf_counter()
        report = evaluate_task(
            model,
            prepared.tokenizer,
            task,
            prepared.eval_examples,
            max_new_tokens=task.max_answer_tokens,
            samples=samples,
            vote=vote,
            **({"policy": "confidence"} | options if not model.is_autoregressive else {}),
        )
        rows.append(
            {
                "run": run.name,
                "sampler": label,
                "eval_s": time.perf_counter() - start,
                **report.to_json(),
            }
        )
    return rows


def run_suite(
    name: str, reuse: bool, only: str | None = None, extra: tuple[str, ...] = ()
) -> list[dict[str, Any]]:
    rows = []
    for run in SUITES[name]:
        if only is not None and only not in run.name:
            continue
        out = Path("runs/bench") / name / run.name.replace(" ", "_").replace("/", "-")
        config = load_train_config(
            run.recipe, [*run.overrides, *extra, f"output_dir={out}", "progress=false"]
        )
        train_s = None
        if reuse and (out / "model").is_dir():
            prepared = prepare_data(config)
            model = DiffusionLM.from_pretrained(out / "model")
        else:
            start = time.perf_counter()
            result, prepared = train(config)
            train_s = time.perf_counter() - start
            model = DiffusionLM.from_pretrained(result.model_dir)
        model.eval()
        for row in _evaluate(run, config, model, prepared):
            row.update(train_s=train_s, recipe=run.recipe, overrides=[*run.overrides, *extra])
            rows.append(row)
            print(json.dumps(row), flush=True)
    return rows


def _table(rows: list[dict[str, Any]]) -> None:
    print("| model | sampler | accuracy | per bucket | NFE | train s | eval s |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        buckets = ", ".join(f"{k} {v['accuracy']:.0%}" for k, v in r["buckets"].items())
        acc = f"{r['accuracy']:.1%}"
        if r.get("vote"):
            acc += f" (single {r['sample_accuracy']:.1%})"
        train_s = "reused" if r["train_s"] is None else f"{r['train_s']:.0f}"
        print(
            f"| {r['run']} | {r['sampler']} | {acc} | {buckets} | {r['nfe']} | {train_s} | {r['eval_s']:.0f} |"
        )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("suites", nargs="+", choices=sorted(SUITES))
    parser.add_argument("--reuse", action="store_true", help="evaluate models already trained")
    parser.add_argument(
        "--only",
        help="run only the entries whose name contains this (e.g. 'AR' or 'diffusion'), so that "
        "two processes of OMP_NUM_THREADS=1 can train a pair side by side",
    )
    parser.add_argument(
        "--set",
        nargs="+",
        default=[],
        metavar="KEY=VALUE",
        help="recipe overrides for every run of the suite, e.g. optim.max_steps=1000",
    )
    args = parser.parse_args()
    torch.manual_seed(0)
    commit = git_commit()
    for suite in args.suites:
        rows = run_suite(suite, args.reuse, args.only, tuple(args.set))
        print(
            f"\n### Reasoning suite: {suite} — {datetime.date.today()} — commit {commit}\n\n"
            f"Command: `python benchmarks/reasoning.py {suite}"
            f"{' --only ' + repr(args.only) if args.only else ''}"
            f"{' --set ' + ' '.join(args.set) if args.set else ''}`; {platform.machine()}, "
            f"{torch.get_num_threads()} torch threads, torch {torch.__version__}\n"
        )
        _table(rows)


if __name__ == "__main__":
    main()
