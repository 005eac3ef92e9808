"""The step-level scheduler: rows join and leave between steps, and no row's output depends on
its batch mates (each equals ``generate`` on that prompt alone), whatever the arrival times."""

from __future__ import annotations

import random
import threading
import time

import pytest
import torch

from dlm.sampling import SamplerSettings, generate
from dlm.serve import QueueFull, Scheduler, ShuttingDown
from serve_helpers import text_model


class Collect:
    """A sink that keeps every item of every row, and signals when ``n`` rows ended."""

    def __init__(self, n: int) -> None:
        self.items: dict[int, list] = {}
        self.ended: dict[int, tuple] = {}
        self.n = n
        self.all_ended = threading.Event()
        self.lock = threading.Lock()

    def sink(self, key: int):
        def put(kind, value):
            with self.lock:
                self.items.setdefault(key, []).append((kind, value))
                if kind != "step":
                    self.ended[key] = (kind, value)
                    if len(self.ended) == self.n:
                        self.all_ended.set()

        return put


def _requests(seed: int, n: int, *, stochastic: bool = False):
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        prompt = [rng.randrange(5, 25) for _ in range(rng.randrange(1, 14))]
        length = rng.choice([6, 12, 20])
        options = {
            "max_new_tokens": length,
            "policy": rng.choice(["confidence", "margin", "entropy"]),
            "block_length": rng.choice([None, 4, 6]),
            "cache": "none",
        }
        kind = rng.choice(["steps", "threshold", "default", "cache"])
        if kind == "steps":
            options["steps"] = length
        elif kind == "threshold":
            options["threshold"] = 0.4
        elif kind == "cache":
            options.update(block_length=4, cache=rng.choice(["prefix", "dual"]))
        if stochastic:
            options.update(temperature=1.0, seed=rng.randrange(1000), cache="none")
        out.append((prompt, SamplerSettings(**options)))
    return out


def _run_all(scheduler: Scheduler, requests, *, arrivals: random.Random | None) -> dict:
    collect = Collect(len(requests))
    for key, (prompt, settings) in enumerate(requests):
        scheduler.submit(prompt, settings, collect.sink(key))
        if arrivals is not None:
            time.sleep(arrivals.random() * 0.004)
    assert collect.all_ended.wait(120), "rows did not end"
    return collect.ended


@pytest.mark.parametrize("arch", ["gpt2", "llama"])
@pytest.mark.parametrize("shift", [True, False])
def test_each_row_equals_generate_alone_whatever_the_batch(arch, shift):
    model = text_model(arch)
    model.config.shift = shift
    requests = _requests(seed=1, n=24)
    expected = [
        generate(model, torch.tensor([p]), settings=s).generated[0].tolist() for p, s in requests
    ]
    scheduler = Scheduler(model, max_rows=6, max_queue=64)
    try:
        busy = _run_all(scheduler, requests, arrivals=random.Random(7))
        steps_busy = scheduler.steps
        for key, want in enumerate(expected):
            kind, result = busy[key]
            assert kind == "done", (key, kind, result)
            assert result.region == want, key
        # alone, one at a time, through the same scheduler: the same tokens again
        for key, (prompt, settings) in enumerate(requests[:6]):
            (kind, result), = _run_all(scheduler, [(prompt, settings)], arrivals=None).values()
            assert result.region == expected[key]
        # the busy run really batched: far fewer batch steps than the rows' steps summed
        row_steps = sum(busy[k][1].steps for k in busy)
        assert steps_busy < row_steps / 2
    finally:
        scheduler.shutdown(5)


def test_seeded_stochastic_rows_draw_the_same_alone_or_batched():
    model = text_model("llama")
    requests = _requests(seed=3, n=12, stochastic=True)
    expected = [
        generate(model, torch.tensor([p]), settings=s).generated[0].tolist() for p, s in requests
    ]
    scheduler = Scheduler(model, max_rows=4)
    try:
        busy = _run_all(scheduler, requests, arrivals=random.Random(1))
        assert [busy[k][1].region for k in range(len(requests))] == expected
    finally:
        scheduler.shutdown(5)


def test_rows_join_between_steps_and_short_rows_leave_first():
    model = text_model("llama", max_positions=256)
    scheduler = Scheduler(model, max_rows=8)
    try:
        order = []
        long_done, short_done = threading.Event(), threading.Event()

        def sink(name, event):
            def put(kind, value):
                if kind != "step":
                    order.append(name)
                    event.set()
            return put

        long = SamplerSettings(max_new_tokens=200, steps=200)
        scheduler.submit([5, 6, 7], long, sink("long", long_done))
        while scheduler.steps < 5:
            time.sleep(0.001)
        scheduler.submit([8, 9], SamplerSettings(max_new_tokens=4, steps=4), sink("short", short_done))
        assert short_done.wait(60) and long_done.wait(120)
        assert order == ["short", "long"]  # the short row joined the running batch and left it
    finally:
        scheduler.shutdown(5)


def test_a_cancelled_row_leaves_at_the_next_step():
    model = text_model("llama", max_positions=256)
    scheduler = Scheduler(model, max_rows=4)
    try:
        collect = Collect(1)
        row = scheduler.submit([5, 6], SamplerSettings(max_new_tokens=200, steps=200), collect.sink(0))
        while scheduler.steps < 3:
            time.sleep(0.001)
        row.cancel()
        assert collect.all_ended.wait(30)
        assert collect.ended[0] == ("cancelled", "cancelled")
        steps_seen = sum(kind == "step" for kind, _ in collect.items[0])
        assert steps_seen < 200
        deadline = time.monotonic() + 5
        while scheduler.active_rows and time.monotonic() < deadline:
            time.sleep(0.01)
        assert scheduler.active_rows == 0
    finally:
        scheduler.shutdown(5)


def test_queue_full_is_refused_and_timeouts_cancel():
    model = text_model("llama", max_positions=256)
    scheduler = Scheduler(model, max_rows=1, max_queue=1)
    try:
        collect = Collect(2)
        long = SamplerSettings(max_new_tokens=200, steps=200)
        first = scheduler.submit([5], long, collect.sink(0))
        scheduler.submit([6], long, collect.sink(1), timeout=0.05)  # waits, then times out
        with pytest.raises(QueueFull) as refused:
            scheduler.submit([7], long, lambda kind, value: None)
        assert refused.value.retry_after >= 1
        while 1 not in collect.ended:
            time.sleep(0.01)
        assert collect.ended[1] == ("cancelled", "timeout")
        first.cancel()
        assert collect.all_ended.wait(30)
    finally:
        scheduler.shutdown(5)


def test_shutdown_finishes_within_grace_then_cancels_and_refuses_new_rows():
    model = text_model("llama", max_positions=256)
    scheduler = Scheduler(model, max_rows=2)
    collect = Collect(2)
    scheduler.submit([5], SamplerSettings(max_new_tokens=4, steps=4), collect.sink(0))
    scheduler.submit([6], SamplerSettings(max_new_tokens=200, steps=200), collect.sink(1))
    while scheduler.steps < 8:
        time.sleep(0.001)
    scheduler.shutdown(grace=0.0)
    assert collect.ended[0][0] == "done"
    assert collect.ended[1] == ("cancelled", "shutdown")
    with pytest.raises(ShuttingDown):
        scheduler.submit([5], SamplerSettings(max_new_tokens=4), lambda kind, value: None)


def test_a_settings_error_at_the_first_step_ends_the_row_with_it():
    model = text_model("llama")
    scheduler = Scheduler(model)
    try:
        collect = Collect(1)
        bad = SamplerSettings(max_new_tokens=12, steps=2, block_length=4)  # 3 blocks, 2 steps
        scheduler.submit([5, 6], bad, collect.sink(0))
        assert collect.all_ended.wait(30)
        kind, err = collect.ended[0]
        assert kind == "error" and "raise steps or block_length" in str(err)
    finally:
        scheduler.shutdown(5)


def test_an_autoregressive_model_is_refused():
    model = text_model("llama")
    model.config.attention = "causal"
    with pytest.raises(Exception, match="autoregressive"):
        Scheduler(model)


def test_length_groups_bound_the_padding_and_keep_equal_lengths_together():
    from dlm.serve.scheduler import length_groups

    rng = random.Random(0)
    lengths = [rng.choice([20, 21, 40, 80, 160]) for _ in range(64)]
    groups = length_groups(lengths, lambda n: n, 0.25)
    assert sorted(n for g in groups for n in g) == sorted(lengths)  # every row, once
    for group in groups:
        assert max(group) * len(group) <= 1.25 * sum(group)
    assert length_groups([50] * 10, lambda n: n, 0.0) == [[50] * 10]
    assert len(length_groups([160, 20, 20, 20], lambda n: n, 0.25)) == 2


@pytest.mark.parametrize("shift", [True, False])
def test_block_causal_rows_equal_generate_alone_pooled_or_with_their_exact_cache(shift):
    model = text_model("llama")
    model.config.attention, model.config.block_size, model.config.shift = "block_causal", 4, shift
    rng = random.Random(5)
    requests = []
    for i in range(12):
        prompt = [rng.randrange(5, 25) for _ in range(rng.randrange(1, 11))]
        cache = ["none", "prefix", "dual"][i % 3]
        requests.append(
            (prompt, SamplerSettings(max_new_tokens=rng.choice([5, 8, 13]), policy="confidence",
                                     cache=cache, block_length=2 if cache == "dual" else None,
                                     threshold=rng.choice([None, 0.4])))
        )
    expected = [
        generate(model, torch.tensor([p]), settings=s).generated[0].tolist() for p, s in requests
    ]
    scheduler = Scheduler(model, max_rows=6, max_queue=64)
    try:
        busy = _run_all(scheduler, requests, arrivals=random.Random(2))
        for key, want in enumerate(expected):
            kind, result = busy[key]
            assert kind == "done", (key, kind, result)
            assert result.region == want, key
    finally:
        scheduler.shutdown(5)
