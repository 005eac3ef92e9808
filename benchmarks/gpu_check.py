"""What only a GPU can show for the foundation: bf16 mixed-precision training, sampling speed.

    python benchmarks/gpu_check.py [--quick]

1. The demo recipe (6x6 Sudoku, 0.8M parameters, 700 steps) trained on the GPU in fp32 and in
   bf16 mixed precision: training time, tokens/s, verified accuracy of each.
2. Sampling 256 held-out puzzles with the fp32 and the bf16-cast model: NFE, wall time,
   tokens/s, accuracy.
3. A LLaMA-shape model of about 0.33B parameters: bf16 training-step throughput of the
   masked-diffusion objective on packed random tokens (no padding: the maskless SDPA path).

Prints one JSON object per measurement, then a markdown summary.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time

import torch
from accelerate.state import AcceleratorState

from dlm.data import SequenceData
from dlm.demo import demo_config, evaluate_sudoku, train_model
from dlm.models import DiffusionConfig, DiffusionLM, backbone_config, build_backbone
from dlm.tasks import get_task
from dlm.training import prepare_data
from dlm.training.objectives import build_objective


def sudoku_runs(quick: bool) -> list[dict]:
    rows = []
    work = tempfile.mkdtemp()
    overrides = {"optim.max_steps": 20, "data.n_train": 512, "data.n_eval": 32} if quick else {}
    base = demo_config(f"{work}/probe", overrides)
    prepared = prepare_data(base)
    task = get_task(base.data.task, **base.data.task_options)
    for precision in ("no", "bf16"):
        cfg = demo_config(f"{work}/{precision}", {**overrides, "optim.mixed_precision": precision})
        AcceleratorState._reset_state()  # one process, two precisions: accelerate keeps a singleton
        trained, result = train_model(cfg, prepared)
        for cast in (("fp32", torch.float32), ("bf16", torch.bfloat16)):
            if precision == "no" and cast[0] == "bf16":
                continue
            sampler_model = trained.to(cast[1])
            evaluate_sudoku(sampler_model, prepared, task, batch_size=8)  # warm-up
            report = evaluate_sudoku(sampler_model, prepared, task, batch_size=256)
            row = {
                "what": "sudoku-demo",
                "train_precision": precision,
                "sampling_dtype": cast[0],
                "train_seconds": round(result.train_seconds, 2),
                "train_tokens_per_s": round(result.tokens / result.train_seconds),
                "final_loss": round(sum(result.losses[-20:]) / len(result.losses[-20:]), 4),
                "accuracy": report.accuracy,
                "n_eval": report.n_eval,
                "nfe": report.nfe,
                "sample_seconds": round(report.seconds, 3),
                "sample_tokens_per_s": round(report.tokens_per_second),
            }
            print(json.dumps(row), flush=True)
            rows.append(row)
    return rows


def large_model_throughput(quick: bool) -> dict:
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    hidden, layers, heads, seq, batch, steps = (
        (1024, 24, 16, 1024, 16, 12) if not quick else (64, 2, 4, 64, 2, 3)
    )
    cfg = backbone_config(
        "llama",
        vocab_size=32000,
        hidden_size=hidden,
        num_layers=layers,
        num_heads=heads,
        intermediate_size=int(hidden * 8 / 3) // 64 * 64,
        max_positions=seq,
    )
    model = DiffusionLM(
        build_backbone(cfg, seed=0), DiffusionConfig(mask_token_id=31999, shift=True)
    ).to(device)
    params = sum(p.numel() for p in model.parameters())
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4, fused=device.type == "cuda")
    objective = build_objective(demo_config("/tmp/unused"))
    ids = torch.randint(0, 31999, (batch, seq), device=device)
    everything = torch.ones_like(ids, dtype=torch.bool)
    data = SequenceData(ids, everything, everything)
    times = []
    for step in range(steps):
        if device.type == "cuda":
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda"):
            out = objective(model, data, step)
        out.loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        if device.type == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - t0)
    steady = sorted(times[2:])
    median = steady[len(steady) // 2]
    row = {
        "what": "llama-bf16-train-step",
        "params": params,
        "batch": batch,
        "seq_len": seq,
        "median_step_s": round(median, 4),
        "tokens_per_s": round(batch * seq / median),
        "model_tflops": round(6 * params * batch * seq / median / 1e12, 1),
        "max_memory_gb": round(torch.cuda.max_memory_allocated() / 1e9, 2)
        if device.type == "cuda"
        else None,
        "loss": round(float(out.loss.detach()), 3),
    }
    print(json.dumps(row), flush=True)
    return row


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument(
        "--quick", action="store_true", help="tiny sizes, to check the script itself on CPU"
    )
    args = parser.parse_args()
    device = torch.cuda.get_device_name() if torch.cuda.is_available() else "cpu"
    print(json.dumps({"device": device, "torch": torch.__version__}), flush=True)
    rows = sudoku_runs(args.quick)
    big = large_model_throughput(args.quick)
    print(
        f"\n| train precision | sampling dtype | train s | train tok/s | accuracy | sample s (n={rows[0]['n_eval']}) | sample tok/s |"
    )
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['train_precision']} | {r['sampling_dtype']} | {r['train_seconds']} | {r['train_tokens_per_s']} | "
            f"{r['accuracy']:.1%} | {r['sample_seconds']} | {r['sample_tokens_per_s']} |"
        )
    print(
        f"\nLLaMA-shape {big['params'] / 1e6:.0f}M, bf16 autocast, batch {big['batch']} x {big['seq_len']}: "
        f"{big['median_step_s'] * 1000:.0f} ms/step, {big['tokens_per_s']} tok/s, ~{big['model_tflops']} TFLOP/s (6N), "
        f"peak memory {big['max_memory_gb']} GB"
    )


if __name__ == "__main__":
    main()
