"""Does a path model look edges up in the graph, or copy nodes from its own answer?

    python benchmarks/path_lookup.py --model runs/bench/path/path_diffusion [MORE_MODELS ...]

In the path task's answer "a,b/b,c/c,d/d,e/e,f" every inner node (b .. e) is written twice, at
the end of one edge and the start of the next. A diffusion model trained with random masking
can predict a masked node from its visible twin without reading the graph; only when both
copies are masked must it find the edge in the prompt. For every inner node k of every held-out
answer this script masks, with everything else in the answer clean:

- ``copy``: the node's second copy only (its twin is visible);
- ``lookup``: both copies (the neighbours on either side stay visible);
- ``prefix lookup``: both copies and everything after them (only the path so far is
  visible), the condition an AR model is always in;
- ``suffix lookup``: both copies and everything before them (only the rest of the path, up to
  the goal, is visible): the node must be found as the predecessor of the next one, the
  backward step that lets a diffusion model plan from the goal past the branch point.

It prints the accuracy of the argmax at the masked copy (all of the node's characters right)
for each. For an AR model the prefix-lookup figure is its teacher-forced accuracy at the node's
first copy; the other conditions do not apply. Models are ``dlm`` checkpoints of ``recipes/path/*``
(their directory holds ``train_config.yaml`` and ``model/``).
"""

from __future__ import annotations

import argparse
import datetime
import platform
from pathlib import Path

import torch
from provenance import git_commit

from dlm.data.sequences import encode_pairs, encode_prompts
from dlm.models import DiffusionLM
from dlm.tasks.path import parse_edges
from dlm.training import load_train_config
from dlm.training.setup import prepare_data

CONDITIONS = ("copy", "lookup", "prefix lookup", "suffix lookup")


def node_spans(target: str) -> list[tuple[tuple[int, int], tuple[int, int]]]:
    """Character spans (start, end) of the two copies of each inner node of a path answer."""
    edges = parse_edges(target)
    if edges is None:
        raise ValueError(f"not a path answer: {target!r}")
    spans, offset, ends = [], 0, []
    for u, v in edges:
        first = (offset, offset + len(str(u)))
        second = (first[1] + 1, first[1] + 1 + len(str(v)))
        ends.append((first, second))
        offset = second[1] + 1  # the "/"
    for k in range(1, len(edges)):
        spans.append((ends[k - 1][1], ends[k][0]))  # (end of edge k-1, start of edge k)
    return spans


def probe(directory: Path, n_eval: int) -> dict[str, tuple[int, int]]:
    """(correct, total) per condition over every inner node of ``n_eval`` held-out answers."""
    config = load_train_config(str(directory / "train_config.yaml"), [f"data.n_eval={n_eval}"])
    if config.data.task != "path":
        raise SystemExit(f"{directory} was trained on {config.data.task!r}, not the path task")
    prepared = prepare_data(config)
    model = DiffusionLM.from_pretrained(directory / "model").eval()
    tokenizer, examples = prepared.tokenizer, prepared.eval_examples
    data = encode_pairs(tokenizer, [e.prompt for e in examples], [e.target for e in examples])
    heads = [len(h) for h in encode_prompts(tokenizer, [e.prompt for e in examples])]
    mask_id = model.config.mask_token_id
    conditions = ("prefix lookup",) if model.is_autoregressive else CONDITIONS
    counts = {c: [0, 0] for c in conditions}
    for condition in conditions:
        rows, checks = [], []
        for i, example in enumerate(examples):
            for twin, copy in node_spans(example.target):
                ids = data.input_ids[i].clone()
                at = slice(heads[i] + copy[0], heads[i] + copy[1])
                if not model.is_autoregressive:
                    ids[at] = mask_id
                    if condition != "copy":
                        ids[heads[i] + twin[0] : heads[i] + twin[1]] = mask_id
                    if condition == "prefix lookup":
                        ids[heads[i] + twin[0] :] = mask_id
                    if condition == "suffix lookup":
                        ids[heads[i] : heads[i] + copy[1]] = mask_id
                    checked = at
                else:
                    checked = slice(heads[i] + twin[0], heads[i] + twin[1])
                rows.append(ids)
                checks.append((len(rows) - 1, checked, data.input_ids[i][checked]))
        batch = torch.stack(rows)
        with torch.no_grad():
            predictions = torch.cat(
                [model(part, None).argmax(-1) for part in batch.split(256)], dim=0
            )
        for row, checked, gold in checks:
            counts[condition][0] += int(torch.equal(predictions[row, checked], gold))
            counts[condition][1] += 1
    return {c: (right, total) for c, (right, total) in counts.items()}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("models", nargs="+", type=Path, help="run directories of path recipes")
    parser.add_argument("--n-eval", type=int, default=300)
    args = parser.parse_args()
    print(
        f"### Path lookup probe — {datetime.date.today()} — commit {git_commit()}\n\n"
        f"Command: `python benchmarks/path_lookup.py {' '.join(map(str, args.models))} "
        f"--n-eval {args.n_eval}`; {platform.machine()}, torch {torch.__version__}\n"
    )
    print("| model | " + " | ".join(CONDITIONS) + " |")
    print("|---|" + "---|" * len(CONDITIONS))
    for directory in args.models:
        result = probe(directory, args.n_eval)
        cells = [
            f"{result[c][0] / result[c][1]:.1%} of {result[c][1]}" if c in result else "n/a"
            for c in CONDITIONS
        ]
        print(f"| {directory} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
