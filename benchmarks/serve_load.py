"""Load on ``dlm serve`` over loopback: continuous batching against one request at a time.

    python benchmarks/serve_load.py --model sudoku-model [--concurrency 1 8 32 64] [--requests 200]
    python benchmarks/serve_load.py --random-model            # a larger random-weight model
    python benchmarks/serve_load.py --model sudoku-model --soak 1000   # RSS before/after

For each model the server runs twice as a subprocess (``dlm serve``, ``OMP_NUM_THREADS`` set
for it): with ``--max-rows 64`` (continuous batching) and with ``--max-rows 1`` (one request at
a time: the others wait in the queue). At each concurrency level, that many clients each send
streaming requests (``stream=true, dlm_events=true``) back to back until ``--requests`` are
done. Reported per level: generated tokens/s (completion tokens over the wall time), time to
the first event (the first step's event) p50, latency p50 / p99, errors (must be 0). ``--soak
N`` sends N more requests at the highest concurrency and reports the server's RSS before
(after a warm-up) and after. The prompts: the demo model's own held-out puzzles (its recorded
task) or random text.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import json
import os
import platform
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from provenance import git_commit

ROOT = Path(__file__).resolve().parents[1]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def random_model(out: Path, width: int, layers: int, positions: int) -> Path:
    """A random-weight LLaMA-shape model with a character tokenizer, saved as a dlm checkpoint."""
    from dlm.data.char_tokenizer import build_char_tokenizer
    from dlm.models import DiffusionConfig, DiffusionLM, backbone_config, build_backbone

    tokenizer = build_char_tokenizer("abcdefghijklmnopqrstuvwxyz0123456789 ")
    config = backbone_config(
        "llama", vocab_size=len(tokenizer), hidden_size=width, num_layers=layers,
        num_heads=max(1, width // 64), max_positions=positions,
    )
    diffusion = DiffusionConfig(
        mask_token_id=tokenizer.mask_token_id, shift=False, attention="bidirectional",
        pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id,
    )
    model = DiffusionLM(build_backbone(config, seed=0), diffusion)
    model.save_pretrained(out, tokenizer)
    return out


def prompts_for(model_dir: Path, n: int, seed: int) -> list[str]:
    """The model's held-out task prompts, or random text for a model with no task."""
    from dlm.training import recorded_task

    task = recorded_task(model_dir)
    rng = random.Random(seed)
    if task is not None:
        examples = task.held_out(n_train=0, n_test=n, seed=seed)[1]
        return [e.prompt for e in examples]
    letters = "abcdefghijklmnopqrstuvwxyz "
    return ["".join(rng.choice(letters) for _ in range(rng.randrange(8, 33))) for _ in range(n)]


class Server:
    def __init__(self, model: Path, max_rows: int, threads: int) -> None:
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
        cmd = [
            sys.executable, "-m", "dlm.cli.main", "serve", "--model", str(model),
            "--port", str(self.port), "--max-rows", str(max_rows), "--max-queue", "4096",
            "--log-level", "warning",
        ]
        self.proc = subprocess.Popen(cmd, env=env, stderr=subprocess.DEVNULL)
        import httpx

        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                if httpx.get(self.url + "/health", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                time.sleep(0.2)
        raise RuntimeError("the server did not start")

    def close(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=60)


async def _one(client, url: str, body: dict) -> dict:
    start = time.perf_counter()
    first = None
    tokens = 0
    async with client.stream("POST", url + "/v1/completions", json=body) as response:
        if response.status_code != 200:
            await response.aread()
            return {"error": response.status_code}
        event = None
        async for line in response.aiter_lines():
            if line.startswith("event:"):
                event = line[6:].strip()
            elif line.startswith("data:"):
                if first is None:
                    first = time.perf_counter() - start
                if event == "dlm.done":
                    tokens += json.loads(line[5:])["tokens"]
                if "[DONE]" in line:
                    break
                event = None
    return {"latency": time.perf_counter() - start, "first": first, "tokens": tokens}


async def _load(url: str, bodies: list[dict], concurrency: int) -> dict:
    import httpx

    queue = list(bodies)
    results: list[dict] = []
    limits = httpx.Limits(max_connections=concurrency + 4, max_keepalive_connections=concurrency + 4)
    async with httpx.AsyncClient(timeout=600, limits=limits) as client:
        async def worker() -> None:
            while queue:
                body = queue.pop()
                try:
                    results.append(await _one(client, url, body))
                except Exception as err:  # counted, never hidden
                    results.append({"error": repr(err)})

        start = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        wall = time.perf_counter() - start
    ok = [r for r in results if "error" not in r]
    lat = sorted(r["latency"] for r in ok)
    firsts = sorted(r["first"] for r in ok if r["first"] is not None)

    def pct(values, q):
        return values[min(len(values) - 1, int(q * len(values)))] if values else float("nan")

    return {
        "requests": len(results),
        "errors": len(results) - len(ok),
        "wall_s": wall,
        "tokens_per_s": sum(r["tokens"] for r in ok) / wall,
        "first_event_p50_s": statistics.median(firsts) if firsts else float("nan"),
        "latency_p50_s": statistics.median(lat) if lat else float("nan"),
        "latency_p99_s": pct(lat, 0.99),
    }


def bodies_for(prompts: list[str], count: int, args, seed: int) -> list[dict]:
    rng = random.Random(seed)
    out = []
    for i in range(count):
        body = {"prompt": prompts[i % len(prompts)], "stream": True, "dlm_events": True}
        if args.max_tokens:
            body["max_tokens"] = rng.choice(args.max_tokens)
        if args.steps:
            body["steps"] = args.steps
        out.append(body)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", help="a model directory (the demo's: sudoku-model)")
    parser.add_argument("--random-model", action="store_true", help="a larger random-weight model")
    parser.add_argument("--width", type=int, default=512)
    parser.add_argument("--layers", type=int, default=8)
    parser.add_argument("--positions", type=int, default=256)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 8, 32, 64])
    parser.add_argument("--requests", type=int, default=128, help="requests per level")
    parser.add_argument("--max-tokens", type=int, nargs="*", help="choose each request's max_tokens from these")
    parser.add_argument("--steps", type=int, help="steps per request (default: the model's)")
    parser.add_argument("--modes", nargs="+", type=int, default=[64, 1], help="--max-rows of each server")
    parser.add_argument("--threads", type=int, default=1, help="OMP_NUM_THREADS of the server")
    parser.add_argument("--soak", type=int, default=0, help="then this many requests, RSS before/after")
    parser.add_argument("--json", help="also write the rows as JSON")
    args = parser.parse_args()
    if bool(args.model) == args.random_model:
        parser.error("give --model DIR or --random-model")
    with tempfile.TemporaryDirectory() as tmp:
        if args.random_model:
            model = random_model(Path(tmp) / "random", args.width, args.layers, args.positions)
            args.max_tokens = args.max_tokens or [32, 64, 128]
            name = f"random LLaMA {args.width}x{args.layers}"
        else:
            model, name = Path(args.model), Path(args.model).name
        prompts = prompts_for(model, 256, seed=0)
        rows = []
        print(f"# {name}; commit {git_commit()}; {platform.machine()}, {os.cpu_count()} cores; "
              f"{datetime.date.today()}; server OMP_NUM_THREADS={args.threads}")
        print("| max rows | clients | requests | errors | tokens/s | first event p50 (s) | "
              "latency p50 (s) | p99 (s) |")
        print("|---:|---:|---:|---:|---:|---:|---:|---:|")
        for mode in args.modes:
            server = Server(model, mode, args.threads)
            try:
                asyncio.run(_load(server.url, bodies_for(prompts, 8, args, 99), 4))  # warm-up
                for level in args.concurrency:
                    row = asyncio.run(_load(server.url, bodies_for(prompts, args.requests, args, level), level))
                    row.update(max_rows=mode, clients=level)
                    rows.append(row)
                    print(f"| {mode} | {level} | {row['requests']} | {row['errors']} | "
                          f"{row['tokens_per_s']:.0f} | {row['first_event_p50_s']:.3f} | "
                          f"{row['latency_p50_s']:.3f} | {row['latency_p99_s']:.3f} |", flush=True)
                if args.soak and mode == max(args.modes):
                    level = max(args.concurrency)
                    rss = [_rss_mib(server.proc.pid)]
                    errors = 0
                    for part in range(4):  # RSS after each quarter: growth, or a plateau
                        bodies = bodies_for(prompts, args.soak // 4, args, 7 + part)
                        errors += asyncio.run(_load(server.url, bodies, level))["errors"]
                        rss.append(_rss_mib(server.proc.pid))
                    rows.append({"max_rows": mode, "clients": level, "soak": args.soak,
                                 "errors": errors, "rss_mib": rss})
                    print(f"# soak: {args.soak} requests at {level} clients, {errors} errors; "
                          f"server RSS (MiB) before and after each quarter: "
                          f"{' '.join(f'{r:.0f}' for r in rss)}")
            finally:
                server.close()
        if args.json:
            Path(args.json).write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
