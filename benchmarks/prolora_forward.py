"""Three ways to compute a PRoLoRA update in training, timed side by side on CPU.

    OMP_NUM_THREADS=1 python benchmarks/prolora_forward.py [--tokens 2048] [--repeats 5]
        [--shapes 768x2304,4096x4096,4096x11008] [--r 8 --u 0 --m 2 --n 2]

For each ``d_in x d_out`` shape and ``--tokens`` rows of input (batch * sequence), one
forward and one backward (gradients for the adapter parameters and for the input, as inside a
network) of the adapter branch alone, the median of ``--repeats`` after a warm-up:

* ``(a) materialise A, B``: gather the rank-r ``A`` (r x d_in) and ``B`` (d_out x r) from the
  shared chunks, then ``(x @ A^T) @ B^T`` (what ``PRoLoRALinear.forward`` does);
* ``(b) chunked``: never form ``A`` or ``B``: split ``x`` into the ``m`` chunks of ``d_in``, multiply
  each by ``A0^T``, roll the rank axis and sum; then one ``h @ B0^T`` per rolled copy of ``B``;
* ``(c) materialise dW``: form the ``d_out x d_in`` update ``(alpha/r) B A`` and multiply by it.

The frozen base layer's own ``x @ W^T`` (forward and input gradient) is timed too, for scale.
The three results are checked against each other before timing. The thread count is torch's
(``OMP_NUM_THREADS`` when set).
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time
from collections.abc import Callable

import torch
import torch.nn.functional as F
from provenance import git_commit
from torch import nn

from dlm.peft import PeftSettings, PRoLoRALinear


def _chunked(layer: PRoLoRALinear, x: torch.Tensor) -> torch.Tensor:
    """(b): the shared update without materialising A or B (u = 0 parts added plainly)."""
    s, d_out = layer.shared, layer.d_out
    step_a = max(s // layer.m, 1) if layer.rotation else 0
    step_b = max(s // layer.n, 1) if layer.rotation else 0
    h = x.new_zeros(x.shape[0], s)
    for j, xj in enumerate(x.split(layer.chunk_in, dim=1)):
        # copy j's row i is A0[(i + j s_A) mod s], so column i of xj @ copy_j^T is column
        # (i + j s_A) mod s of xj @ A0^T
        hj = xj @ layer.lora_A[:, : xj.shape[1]].T
        h = h + torch.roll(hj, -j * step_a, dims=1)
    # copy i of B has column c = B0[:, (c + i s_B) mod s]: h @ copy_i^T = roll(h, i s_B) @ B0^T
    outs = [torch.roll(h, i * step_b, dims=1) @ layer.lora_B.T for i in range(layer.n)]
    y = torch.cat(outs, dim=1)[:, :d_out]
    if layer.u:
        y = y + (x @ layer.lora_A_vec.T) @ layer.lora_B_vec.T
    return y * layer.scale


def _materialised(layer: PRoLoRALinear, x: torch.Tensor) -> torch.Tensor:
    """(a): gather A and B, two thin matmuls."""
    a, b = layer.full_A(), layer.full_B()
    return F.linear(F.linear(x, a), b) * layer.scale


def _delta(layer: PRoLoRALinear, x: torch.Tensor) -> torch.Tensor:
    """(c): form the d_out x d_in update, one wide matmul."""
    a, b = layer.full_A(), layer.full_B()
    return F.linear(x, (b @ a) * layer.scale)


def _time(fn: Callable[[], None], repeats: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def _step(layer: nn.Module, x: torch.Tensor, g: torch.Tensor, forward: Callable) -> Callable:
    def run() -> None:
        for p in layer.parameters():
            p.grad = None
        x.grad = None
        y = forward(layer, x)
        y.backward(g)

    return run


def bench_shape(d_in: int, d_out: int, args: argparse.Namespace) -> dict[str, float]:
    torch.manual_seed(0)
    base = nn.Linear(d_in, d_out, bias=False)
    settings = PeftSettings(method="prolora", r=args.r, u=args.u, m=args.m, n=args.n)
    layer = PRoLoRALinear(base, settings)
    with torch.no_grad():
        for p in (layer.lora_B, layer.lora_B_vec):
            p.normal_(std=0.02)
    x = torch.randn(args.tokens, d_in, requires_grad=True)
    g = torch.randn(args.tokens, d_out)
    with torch.no_grad():
        ref = _materialised(layer, x)
        for other in (_chunked, _delta):
            got = other(layer, x)
            assert torch.allclose(got, ref, atol=1e-4, rtol=1e-3), other.__name__
    times = {
        "base": _time(_step(layer, x, g, lambda lyr, t: lyr.base_layer(t)), args.repeats),
        "a": _time(_step(layer, x, g, _materialised), args.repeats),
        "b": _time(_step(layer, x, g, _chunked), args.repeats),
        "c": _time(_step(layer, x, g, _delta), args.repeats),
    }
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tokens", type=int, default=2048, help="batch * sequence rows")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--shapes", default="768x2304,4096x4096,4096x11008", help="d_in x d_out")
    parser.add_argument("--r", type=int, default=8)
    parser.add_argument("--u", type=int, default=0)
    parser.add_argument("--m", type=int, default=2)
    parser.add_argument("--n", type=int, default=2)
    args = parser.parse_args()
    shapes = [tuple(int(v) for v in s.lower().split("x")) for s in args.shapes.split(",")]
    print(
        f"PRoLoRA adapter branch, forward + backward, median of {args.repeats}: tokens={args.tokens} "
        f"r={args.r} u={args.u} m={args.m} n={args.n}, float32, {torch.get_num_threads()} thread(s), "
        f"torch {torch.__version__}, {platform.processor() or platform.machine()}, commit {git_commit()}"
    )
    print()
    print(
        "| d_in x d_out | base x@W^T (ms) | (a) materialise A,B (ms) | (b) chunked (ms) "
        "| (c) materialise dW (ms) | b / a | c / a | a / base |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for d_in, d_out in shapes:
        t = bench_shape(d_in, d_out, args)
        ms = {k: 1000 * v for k, v in t.items()}
        print(
            f"| {d_in} x {d_out} | {ms['base']:.1f} | {ms['a']:.2f} | {ms['b']:.2f} | "
            f"{ms['c']:.1f} | {t['b'] / t['a']:.2f} | {t['c'] / t['a']:.1f} | "
            f"{t['a'] / t['base']:.3f} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
