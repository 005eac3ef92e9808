"""The server's Prometheus metrics (``/metrics``), through ``prometheus_client``.

Gauges read at scrape time: queue depth, active rows, and the batch's steps/s and generated
tokens/s over the last ``window`` seconds. Counters: batch steps, row-steps (a row's step in a
batch step), generated tokens, requests by endpoint and outcome. Histograms: rows per batch
step, request latency and time to the first event.
"""

from __future__ import annotations

import collections
import threading
import time
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

if TYPE_CHECKING:
    from .scheduler import Scheduler

__all__ = ["ServerMetrics"]

_LATENCY_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120)
_ROWS_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256)


class ServerMetrics:
    """One registry per server (several servers in one process never share counters)."""

    def __init__(self, window: float = 10.0) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.window = window
        self._lock = threading.Lock()
        self._steps: collections.deque[float] = collections.deque()
        self._tokens: collections.deque[tuple[float, int]] = collections.deque()
        self.queue_depth = Gauge("dlm_queue_depth", "requests waiting to join the batch", registry=r)
        self.active_rows = Gauge("dlm_active_rows", "rows in the running batch", registry=r)
        self.steps_per_second = Gauge(
            "dlm_steps_per_second", "batch steps per second over the last window", registry=r
        )
        self.tokens_per_second = Gauge(
            "dlm_tokens_per_second", "generated tokens per second over the last window", registry=r
        )
        self.steps_per_second.set_function(self._step_rate)
        self.tokens_per_second.set_function(self._token_rate)
        self.steps_total = Counter("dlm_steps", "batch steps (one forward of the batch)", registry=r)
        self.row_steps_total = Counter("dlm_row_steps", "rows stepped, summed over steps", registry=r)
        self.tokens_total = Counter(
            "dlm_generated_tokens", "tokens generated (up to and including each EOS)", registry=r
        )
        self.requests_total = Counter(
            "dlm_requests", "requests by endpoint and outcome", ["endpoint", "outcome"], registry=r
        )
        self.rows_per_step = Histogram(
            "dlm_rows_per_step", "rows in each batch step", buckets=_ROWS_BUCKETS, registry=r
        )
        self.forward_seconds = Histogram(
            "dlm_step_forward_seconds", "seconds of each batch step's forward",
            buckets=_LATENCY_BUCKETS, registry=r,
        )
        self.latency = Histogram(
            "dlm_request_latency_seconds", "request latency, arrival to last byte",
            ["endpoint"], buckets=_LATENCY_BUCKETS, registry=r,
        )
        self.first_event = Histogram(
            "dlm_time_to_first_event_seconds", "arrival to the first step event",
            ["endpoint"], buckets=_LATENCY_BUCKETS, registry=r,
        )

    def bind(self, scheduler: Scheduler) -> None:
        """Read the queue depth and active rows from ``scheduler`` at each scrape."""
        self.queue_depth.set_function(lambda: scheduler.queue_depth)
        self.active_rows.set_function(lambda: scheduler.active_rows)

    def on_step(self, rows: int, seconds: float) -> None:
        """The scheduler's per-step hook."""
        self.steps_total.inc()
        self.row_steps_total.inc(rows)
        self.rows_per_step.observe(rows)
        self.forward_seconds.observe(seconds)
        with self._lock:
            now = time.monotonic()
            self._steps.append(now)
            self._trim(now)  # bounded whether or not anyone scrapes

    def on_tokens(self, count: int) -> None:
        self.tokens_total.inc(count)
        with self._lock:
            now = time.monotonic()
            self._tokens.append((now, count))
            self._trim(now)

    def _trim(self, now: float) -> None:
        start = now - self.window
        while self._steps and self._steps[0] < start:
            self._steps.popleft()
        while self._tokens and self._tokens[0][0] < start:
            self._tokens.popleft()

    def _step_rate(self) -> float:
        with self._lock:
            self._trim(time.monotonic())
            return len(self._steps) / self.window

    def _token_rate(self) -> float:
        with self._lock:
            self._trim(time.monotonic())
            return sum(n for _, n in self._tokens) / self.window

    def render(self) -> bytes:
        return generate_latest(self.registry)
