"""Does a step along an objective's gradient help the model? A probe of the RL start.

    python benchmarks/rl_gradient_probe.py --base runs/rl-sft/model [--etas 0.003 0.01 0.03 0.1]

One gradient of the GRPO objective (``--estimator``, 64 prompts x 8 rollouts) or of the SFT
objective (``--estimator sft``, 512 gold examples) at the start, then the held-out accuracy
after a step of norm ``eta`` along it (greedy on 256 sums, and one sample at temperature 1 on
1,024), and along a random direction of the same norm for comparison (``--random``).
"""

from __future__ import annotations

import argparse
import copy
from pathlib import Path

import torch
from provenance import git_commit

from dlm.data import SequenceData, batch_prompts, decode_answers
from dlm.sampling import generate
from dlm.training import load_train_config, prepare_data
from dlm.training.objectives import build_objective
from dlm.training.setup import build_grpo, build_model

ROOT = Path(__file__).resolve().parents[1]


def accuracies(model, prepared, sampler, seed: int = 123) -> tuple[float, float]:
    """(greedy accuracy on 256 held-out sums, one-sample accuracy at the rollouts' settings)."""
    task, tokenizer, held = prepared.task, prepared.tokenizer, prepared.eval_examples[:256]
    torch.manual_seed(seed)
    repeated = [e for e in held for _ in range(4)]
    ids, mask = batch_prompts(tokenizer, [e.prompt for e in repeated])
    sampled = decode_answers(tokenizer, generate(model, ids, mask, settings=sampler).generated)
    ids, mask = batch_prompts(tokenizer, [e.prompt for e in held])
    greedy = decode_answers(
        tokenizer, generate(model, ids, mask, max_new_tokens=sampler.max_new_tokens).generated
    )
    right = sum(task.verify(e, a) for e, a in zip(held, greedy)) / len(held)
    one = sum(task.verify(e, a) for e, a in zip(repeated, sampled)) / len(repeated)
    return right, one


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", default="runs/rl-sft/model")
    parser.add_argument("--estimator", default="one_step", help="coupled, one_step, weighted, sft")
    parser.add_argument("--etas", nargs="+", type=float, default=[0.003, 0.01, 0.03, 0.1])
    parser.add_argument("--random", action="store_true", help="also step along a random direction")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    args = parser.parse_args()
    estimator = "coupled" if args.estimator == "sft" else args.estimator
    overrides = [f"model.init={args.base}", "output_dir=runs/rl-probe", f"rl.estimator={estimator}"]
    overrides += ["data.n_train=5000", "optim.batch_size=64", *args.set]
    config = load_train_config(str(ROOT / "recipes/rl/grpo.yaml"), overrides)
    prepared = prepare_data(config)
    model = build_model(config, prepared.tokenizer)
    grpo = build_grpo(config, prepared, model)
    torch.manual_seed(0)
    rows = torch.arange(512 if args.estimator == "sft" else 64)
    train = prepared.train
    batch = SequenceData(
        train.input_ids[rows], train.noisable[rows], train.loss_mask[rows], index=rows
    )
    objective = (
        build_objective(load_train_config(str(ROOT / "recipes/rl/sft.yaml"), []))
        if (args.estimator == "sft")
        else grpo
    )
    model.train()
    objective(model, batch, 0).loss.backward()
    named = {n: p for n, p in model.named_parameters() if p.grad is not None}
    gradient = {n: p.grad.clone() for n, p in named.items()}
    norm = torch.sqrt(sum((g**2).sum() for g in gradient.values()))
    share = sorted(((float((g**2).sum() / norm**2), n) for n, g in gradient.items()), reverse=True)
    model.eval()
    print(
        f"# commit {git_commit()}; {args.estimator}; start (greedy, T1): "
        f"{accuracies(model, prepared, grpo.sampler)}"
    )
    print(f"# largest shares of the gradient's squared norm: {share[:3]}")
    directions = {"gradient": gradient}
    if args.random:
        directions["random"] = {n: torch.randn_like(g) for n, g in gradient.items()}
    print("| direction | eta | greedy | one sample at T1 |\n|---|---:|---:|---:|")
    for name, direction in directions.items():
        size = torch.sqrt(sum((d**2).sum() for d in direction.values()))
        for eta in args.etas:
            moved = copy.deepcopy(model)
            params = dict(moved.named_parameters())
            with torch.no_grad():
                for n, d in direction.items():
                    params[n] -= eta * d / size
            greedy, one = accuracies(moved, prepared, grpo.sampler)
            print(f"| {name} | {eta:g} | {greedy:.3f} | {one:.3f} |")


if __name__ == "__main__":
    main()
