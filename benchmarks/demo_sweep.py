"""Robustness of the demo recipe across seeds, and the variants that might make it more robust.

    python benchmarks/demo_sweep.py --seeds 0 1 2 3 4 5 --jobs 8 --device cuda

Each (variant, seed) trains the demo recipe with the variant's overrides and evaluates it on the
held-out puzzles with the demo's sampler, in its own process (``--jobs`` at a time). Prints one
JSON line per run and a table of accuracy per variant (mean, minimum over seeds).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import statistics
import tempfile

VARIANTS: dict[str, dict] = {
    "base": {},
    "linear-schedule": {"diffusion.schedule": "linear"},
    "weight-none": {"diffusion.weighting": "none"},
    "lr2e-3": {"optim.lr": 2e-3},
    "steps900": {"optim.max_steps": 900},
    "betas95": {"optim.betas": [0.9, 0.95]},
    "betas95-lr1.5e-3": {"optim.betas": [0.9, 0.95], "optim.lr": 1.5e-3},
    "steps900-betas95": {"optim.max_steps": 900, "optim.betas": [0.9, 0.95]},
    "lr7e-4-steps900": {"optim.lr": 7e-4, "optim.max_steps": 900},
    "h96-steps900": {"model.hidden_size": 96, "optim.max_steps": 900},
}


def run_one(job: tuple[str, int, str]) -> dict:
    name, seed, device = job
    import torch

    from dlm.demo import demo_config, evaluate_sudoku, train_model
    from dlm.tasks import get_task
    from dlm.training import prepare_data

    torch.set_num_threads(2)
    overrides = {**VARIANTS[name], "data.seed": seed, "seed": seed}
    if device == "cpu":
        overrides["optim.mixed_precision"] = "no"
    cfg = demo_config(tempfile.mkdtemp(), overrides)
    prepared = prepare_data(cfg)
    task = get_task(cfg.data.task, **cfg.data.task_options)
    model, result = train_model(cfg, prepared)
    report = evaluate_sudoku(model, prepared, task, batch_size=256)
    row = {
        "variant": name,
        "seed": seed,
        "accuracy": report.accuracy,
        "train_seconds": round(result.train_seconds, 1),
        "final_loss": round(sum(result.losses[-50:]) / 50, 4),
    }
    print(json.dumps(row), flush=True)
    return row


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS))
    parser.add_argument("--jobs", type=int, default=1)
    parser.add_argument("--device", default="cuda")
    args = parser.parse_args()
    jobs = [(v, s, args.device) for v in args.variants for s in args.seeds]
    with mp.get_context("spawn").Pool(args.jobs) as pool:
        rows = pool.map(run_one, jobs)
    print("\n| variant | mean accuracy | min accuracy | seeds |")
    print("|---|---|---|---|")
    for name in args.variants:
        accs = [r["accuracy"] for r in rows if r["variant"] == name]
        print(f"| {name} | {statistics.mean(accs):.1%} | {min(accs):.1%} | {len(accs)} |")


if __name__ == "__main__":
    main()
