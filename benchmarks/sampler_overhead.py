"""Where a sampling step's time goes: the model's forward, and everything else.

    OMP_NUM_THREADS=1 python benchmarks/sampler_overhead.py [--repeats 5] [--json out.json]

Random-weight LLaMA-shape models (2 layers at width 64 and 256, 12 layers at width 256) sample
a 64-token region after a 32-token prompt at batch 1 and 8, in four modes: the whole canvas
(one token per step), blocks of 16, blocks + dual cache, blocks + dual cache + threshold. The
backbone's ``forward`` is timed by a wrapper (a CUDA synchronisation on each side on a GPU), so
a step splits into forward time and non-forward time (proposal, policy, commit, bookkeeping).
Each cell is the median over ``--repeats`` timed runs after a warm-up run.

The script runs against any dlm checkout on ``PYTHONPATH`` (it calls ``dlm.sampling.generate``
when it takes the model first, else the older ``model.generate``), so the same command measures
the code before and after a change side by side.
"""

from __future__ import annotations

import argparse
import inspect
import json
import platform
import statistics
import time

import torch

from dlm.models import DiffusionConfig, DiffusionLM, backbone_config, build_backbone

VOCAB = 512
PROMPT, NEW = 32, 64
MODELS = {"2x64": (2, 64), "2x256": (2, 256), "12x256": (12, 256)}
MODES = {
    "canvas": {},
    "blocks": {"block_length": 16},
    "dual": {"block_length": 16, "cache": "dual"},
    "dual+threshold": {"block_length": 16, "cache": "dual", "threshold": 0.9},
}


def build(layers: int, width: int, device: torch.device) -> DiffusionLM:
    config = backbone_config(
        "llama", vocab_size=VOCAB, hidden_size=width, num_layers=layers, num_heads=4,
        max_positions=256,
    )
    backbone = build_backbone(config, seed=0)
    model = DiffusionLM(backbone, DiffusionConfig(mask_token_id=VOCAB - 1, eos_token_id=None))
    return model.to(device).eval()


def sampler_call(model: DiffusionLM):
    """``generate(model, ids, **kw)`` in whichever form this dlm checkout has."""
    try:
        from dlm.sampling import generate

        if "model" in inspect.signature(generate).parameters:
            return lambda ids, **kw: generate(model, ids, **kw)
    except ImportError:
        pass
    return lambda ids, **kw: model.generate(ids, **kw)


class ForwardTimer:
    """Wraps ``backbone.forward`` and adds up the seconds spent inside it."""

    def __init__(self, model: DiffusionLM, device: torch.device) -> None:
        self.inner, self.device, self.seconds, self.calls = model.backbone.forward, device, 0.0, 0
        self.__wrapped__ = self.inner  # keeps the backbone's signature visible to inspect
        model.backbone.forward = self

    def _sync(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)

    def __call__(self, *args, **kwargs):
        self._sync()
        start = time.perf_counter()
        out = self.inner(*args, **kwargs)
        self._sync()
        self.seconds += time.perf_counter() - start
        self.calls += 1
        return out


def measure(model, device, batch: int, options: dict, repeats: int) -> dict:
    run = sampler_call(model)
    timer = ForwardTimer(model, device)
    ids = torch.randint(0, VOCAB - 2, (batch, PROMPT), generator=torch.Generator().manual_seed(0))
    ids = ids.to(device)
    cells = []
    for i in range(repeats + 1):
        timer.seconds, timer.calls = 0.0, 0
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        start = time.perf_counter()
        out = run(ids, max_new_tokens=NEW, steps=NEW, policy="confidence", **options)
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        wall = time.perf_counter() - start
        if i == 0:
            continue  # warm-up
        steps = max(out.nfe, 1)
        cells.append((wall / steps, timer.seconds / steps, out.nfe))
    model.backbone.forward = timer.inner
    step = statistics.median(c[0] for c in cells)
    forward = statistics.median(c[1] for c in cells)
    return {
        "step_ms": 1e3 * step,
        "forward_ms": 1e3 * forward,
        "other_ms": 1e3 * (step - forward),
        "other_share": (step - forward) / step,
        "nfe": cells[0][2],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--models", nargs="*", default=list(MODELS))
    parser.add_argument("--modes", nargs="*", default=list(MODES))
    parser.add_argument("--batches", nargs="*", type=int, default=[1, 8])
    parser.add_argument(
        "--compile", action="store_true", help="add canvas+compile (torch.compile of the step)"
    )
    parser.add_argument("--json", help="write the rows as JSON")
    args = parser.parse_args()
    device = torch.device(args.device)
    if args.compile:
        MODES["canvas+compile"] = {"compile": True}
        args.modes.append("canvas+compile")
    print(f"torch {torch.__version__}, {torch.get_num_threads()} thread(s), {platform.processor()}")
    print("| model | batch | mode | NFE | step ms | forward ms | other ms | other % |")
    print("|---|---|---|---|---|---|---|---|")
    rows = []
    for name in args.models:
        model = build(*MODELS[name], device)
        for batch in args.batches:
            for mode in args.modes:
                r = measure(model, device, batch, MODES[mode], args.repeats)
                rows.append({"model": name, "batch": batch, "mode": mode, **r})
                print(
                    f"| {name} | {batch} | {mode} | {r['nfe']} | {r['step_ms']:.2f} | "
                    f"{r['forward_ms']:.2f} | {r['other_ms']:.2f} | {100 * r['other_share']:.1f}% |",
                    flush=True,
                )
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=2)


if __name__ == "__main__":
    main()
