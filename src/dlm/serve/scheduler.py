"""The step-level scheduler: one running batch that requests join and leave between steps.

Every admitted request is a *row*: a ``SamplingRun`` on its own one-row canvas, with its own
settings, plan and random generator, driven by a thread of its own (one of ``max_rows``
threads, reused). The row's step forward is
a ``PooledStepForward``: when the run needs logits the row *parks* (hands over its canvas and
the columns it reads) and waits. The scheduler thread waits until every running row is parked
(or finished), computes all their forwards as one ragged batch (``ragged_step_logits``: each
row left-padded into the union with its own positions), hands each row its logits, and the
rows run their step (proposal, policy, commit rule, EOS stopping: the library's own loop,
unchanged) in parallel. That is one *step* of the batch. Between two steps, queued requests
are admitted and rows that finished, were cancelled (a client that disconnected) or ran past
their deadline leave, so a short request is never held by a long one.

Why a row's output does not depend on its batch mates: its tokens are a function of its own
logits and its own generator only (each request seeded apart: ``seed`` gives the same draws
alone or batched), and its logits are its one-row forward's up to the floating point of a
different batch shape (a near-tie in float32 can flip; float64 weights make that vanishingly
rare, which is what the invariance test uses).

Rows with a prefix or dual cache cannot share a forward (their key/value caches are per row,
refreshed at their own block starts): each such row's forward runs on its own in the same
step, in the scheduler thread, so the device is only ever driven from one thread. Batching
cached rows would need a paged cache; left out.

All model work happens in the scheduler thread; row threads do host-side bookkeeping and small
tensor ops. The queue is bounded (``QueueFull``, the server's 429); ``shutdown`` stops
admissions, lets running rows finish for a grace period, then cancels the rest.
"""

from __future__ import annotations

import collections
import itertools
import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import torch

from dlm.errors import DlmUserError
from dlm.models import PooledStepForward, ragged_step_logits
from dlm.sampling import SamplerSettings, StepEvent, sampling_run

if TYPE_CHECKING:
    from dlm.models import DiffusionLM

__all__ = [
    "Cancelled",
    "QueueFull",
    "Row",
    "RowResult",
    "Scheduler",
    "ShuttingDown",
]

log = logging.getLogger("dlm.serve")


class QueueFull(DlmUserError):
    """The bounded queue is full; ``retry_after`` seconds is a hint for when to retry."""

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class ShuttingDown(DlmUserError):
    """The server is shutting down and admits no new requests."""


class Cancelled(Exception):
    """Raised inside a row's thread when its request was cancelled (``reason``)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass
class RowResult:
    """A finished row: its generation region and what it cost."""

    region: list[int]
    nfe: int
    steps: int
    wall_time: float  # seconds from admission to the end
    queue_time: float  # seconds waiting in the queue


#: What a row's sink receives, from the row's thread: ("step", StepEvent), ("done", RowResult),
#: ("cancelled", reason) or ("error", exception). Exactly one of the last three ends a row.
Sink = Callable[[str, Any], None]


@dataclass(eq=False)
class Row:
    """One request in the scheduler: waiting, running, or ended."""

    prompt_ids: list[int]
    settings: SamplerSettings
    sink: Sink
    deadline: float | None  # time.monotonic() after which the row is cancelled ("timeout")
    fixed: list[int] | None = None  # pinned region ids (-1 = free)
    id: int = 0
    submitted: float = field(default_factory=time.monotonic)
    admitted: float | None = None
    cancel_reason: str | None = None
    # the parked forward: ("pooled", tokens, columns) or ("own", callable); its answer
    pending: tuple | None = None
    answer: Any = None
    state: str = "queued"  # queued -> busy <-> parked -> ended
    steps: int = 0
    # set when the row's answer is in or it was cancelled: each row sleeps on its own event,
    # so a step wakes its rows once each (not every row on every park)
    wake: threading.Event = field(default_factory=threading.Event)

    def cancel(self, reason: str = "cancelled") -> None:
        """Ask the row to leave at its next step (from any thread); a no-op once ended."""
        scheduler = getattr(self, "_scheduler", None)
        if scheduler is not None:
            scheduler.cancel(self, reason)


class Scheduler:
    """Owns the running batch of ``model``; ``submit`` rows, ``shutdown`` at the end."""

    def __init__(
        self,
        model: DiffusionLM,
        *,
        max_rows: int = 32,
        max_queue: int = 256,
        slack: float = 0.25,
        on_step: Callable[[int, float], None] | None = None,
    ) -> None:
        if max_rows < 1 or max_queue < 0:
            raise DlmUserError(
                f"max_rows must be >= 1 and max_queue >= 0; got {max_rows} and {max_queue}"
            )
        if model.is_autoregressive:
            raise DlmUserError(
                "dlm serve schedules diffusion models; this checkpoint is autoregressive "
                "(causal attention): serve a diffusion model"
            )
        self.model = model.eval()
        self.max_rows, self.max_queue = max_rows, max_queue
        self.slack = slack  # padding a length group of the step's forward may add
        self.on_step = on_step  # (rows in the step, seconds of the forward), for metrics
        self._cv = threading.Condition()
        self._queue: collections.deque[Row] = collections.deque()
        self._rows: set[Row] = set()
        self._busy = 0
        self._ids = itertools.count(1)
        self._accepting = True
        self._stop = False
        self._finished_times: collections.deque[float] = collections.deque(maxlen=64)
        self.steps = 0
        # one thread per row slot, reused: no thread (and no malloc arena) made per request
        self._row_threads = ThreadPoolExecutor(max_workers=max_rows, thread_name_prefix="dlm-row")
        self._thread = threading.Thread(target=self._loop, name="dlm-scheduler", daemon=True)
        self._thread.start()

    # ------------------------------------------------------------------ public
    @property
    def queue_depth(self) -> int:
        return len(self._queue)

    @property
    def active_rows(self) -> int:
        return len(self._rows)

    def submit(
        self,
        prompt_ids: list[int],
        settings: SamplerSettings,
        sink: Sink,
        *,
        timeout: float | None = None,
        fixed: list[int] | None = None,
    ) -> Row:
        """Queue a request; raises ``QueueFull`` or ``ShuttingDown`` (nothing queued then).

        ``fixed`` pins ids in the generation region (``max_new_tokens`` long, -1 = free), as
        ``generate``'s ``fixed`` does: a suffix to infill before."""
        deadline = None if timeout is None else time.monotonic() + timeout
        row = Row(list(prompt_ids), settings, sink, deadline, fixed=fixed)
        with self._cv:
            if not self._accepting:
                raise ShuttingDown("the server is shutting down; retry on another instance")
            if len(self._rows) + len(self._queue) >= self.max_rows + self.max_queue:
                raise QueueFull(
                    f"the queue is full ({len(self._queue)} waiting, {len(self._rows)} running); "
                    "retry later",
                    self._retry_after(),
                )
            row.id = next(self._ids)
            row._scheduler = self  # type: ignore[attr-defined]
            self._queue.append(row)
            self._cv.notify_all()
        return row

    def cancel(self, row: Row, reason: str = "cancelled") -> None:
        with self._cv:
            if row.state == "ended" or row.cancel_reason is not None:
                return
            row.cancel_reason = reason
            if row.state == "queued" and row in self._queue:
                self._queue.remove(row)
                row.state = "ended"
                self._cv.notify_all()
                row.sink("cancelled", reason)
                return
            row.wake.set()
            self._cv.notify_all()

    def shutdown(self, grace: float = 10.0) -> None:
        """Admit nothing new; let queued and running rows finish for ``grace`` seconds, then
        cancel what is left ("shutdown") and stop the scheduler thread."""
        end = time.monotonic() + grace
        with self._cv:
            self._accepting = False
            self._cv.notify_all()
            while (self._rows or self._queue) and time.monotonic() < end:
                self._cv.wait(timeout=max(0.0, min(0.05, end - time.monotonic())))
            for row in list(self._queue):
                self.cancel(row, "shutdown")
            for row in list(self._rows):
                self.cancel(row, "shutdown")
            while self._rows:
                self._cv.wait(timeout=0.05)
            self._stop = True
            self._cv.notify_all()
        self._thread.join(timeout=10)
        self._row_threads.shutdown(wait=True)

    # ------------------------------------------------------------------ the scheduler thread
    def _retry_after(self) -> int:
        """Seconds until a queue slot is likely free, from the recent completion rate."""
        times = self._finished_times
        if len(times) < 2 or times[-1] <= times[0]:
            return 1
        rate = (len(times) - 1) / (times[-1] - times[0])
        return max(1, min(60, round(len(self._queue) / rate)))

    def _admit_locked(self) -> None:
        now = time.monotonic()
        for row in [r for r in self._queue if r.deadline is not None and now > r.deadline]:
            self._queue.remove(row)
            row.state = "ended"
            row.sink("cancelled", "timeout")
        for row in self._rows:
            if row.deadline is not None and now > row.deadline and row.cancel_reason is None:
                row.cancel_reason = "timeout"
        while self._queue and len(self._rows) < self.max_rows:
            row = self._queue.popleft()
            row.state, row.admitted = "busy", now
            self._rows.add(row)
            self._busy += 1
            self._row_threads.submit(self._row_main, row)

    def _loop(self) -> None:
        while True:
            with self._cv:
                while True:
                    if self._stop:
                        return
                    self._admit_locked()
                    parked = [r for r in self._rows if r.state == "parked"]
                    if self._busy == 0 and parked:
                        break
                    # woken by an arrival, a park, a cancel or a row's end; the timeout
                    # re-checks deadlines
                    self._cv.wait(timeout=0.1)
                for row in parked:
                    row.state = "computing"
            self._step(parked)

    def _step(self, rows: list[Row]) -> None:
        start = time.perf_counter()
        answers: dict[Row, Any] = {}
        try:
            with torch.no_grad():
                pooled = [r for r in rows if r.pending[0] == "pooled"]
                for group in length_groups(pooled, lambda r: r.pending[1].shape[-1], self.slack):
                    logits = ragged_step_logits(
                        self.model, [(r.pending[1], r.pending[2]) for r in group]
                    )
                    answers.update(zip(group, logits, strict=True))
                for row in rows:
                    if row.pending[0] == "own":
                        answers[row] = row.pending[1]()
        except Exception as err:  # a bug in a forward: every row of the step gets it
            log.exception("the batch forward failed")
            answers = dict.fromkeys(rows, err)
        seconds = time.perf_counter() - start
        with self._cv:
            self.steps += 1
            for row in rows:
                row.answer, row.pending = answers[row], None
                row.state = "busy"
                self._busy += 1
        for row in rows:
            row.wake.set()
        if self.on_step is not None:
            self.on_step(len(rows), seconds)

    # ------------------------------------------------------------------ a row's thread
    def _park(self, row: Row, request: tuple) -> Any:
        """Hand ``request`` to the next step and wait for its answer (in the row's thread)."""
        with self._cv:
            if row.cancel_reason is not None:
                raise Cancelled(row.cancel_reason)
            row.pending, row.answer = request, None
            row.state = "parked"
            row.wake.clear()
            self._busy -= 1
            if self._busy == 0:
                self._cv.notify_all()  # the last row in: the scheduler can step
        while True:
            row.wake.wait()
            with self._cv:
                if row.state == "busy":
                    break
                if row.cancel_reason is not None and row.state == "parked":
                    row.state, row.pending = "leaving", None  # never computed
                    self._cv.notify_all()
                    raise Cancelled(row.cancel_reason)
                row.wake.clear()  # cancelled while its forward runs: wait for the answer
        with self._cv:
            answer, row.answer = row.answer, None
        if isinstance(answer, Exception):
            raise answer
        row.steps += 1
        return answer

    def _row_forward(self, row: Row):
        """The step-forward factory of a row's ``SamplingRun``."""
        model = self.model

        def make(attention_mask, length, *, prompt_length, batch, cache, compile, window_at_block):
            if cache == "none":
                return PooledStepForward(
                    model, length, lambda tokens, columns: self._park(row, ("pooled", tokens, columns))
                )
            own = model.step_forward(
                attention_mask, length, prompt_length=prompt_length, batch=batch, cache=cache,
                compile=compile, window_at_block=window_at_block,
            )
            return _OwnForward(own, lambda call: self._park(row, ("own", call)))

        return make

    def _row_main(self, row: Row) -> None:
        outcome: tuple[str, Any]
        try:
            with torch.no_grad():
                device = self.model.device
                ids = torch.tensor([row.prompt_ids], dtype=torch.long, device=device)
                fixed = None
                if row.fixed is not None:
                    fixed = torch.tensor([row.fixed], dtype=torch.long, device=device)
                run = sampling_run(
                    self.model, ids, settings=row.settings, fixed=fixed,
                    step_forward=self._row_forward(row),
                )
                for event in run:
                    row.sink("step", _row_event(event))
                region = run.sequences[0, run.canvas.standard_prompt_length :].tolist()
            now = time.monotonic()
            outcome = (
                "done",
                RowResult(region, run.nfe, row.steps, now - row.admitted, row.admitted - row.submitted),
            )
        except Cancelled as stop:
            outcome = ("cancelled", stop.reason)
        except DlmUserError as err:
            outcome = ("error", err)
        except Exception as err:
            log.exception("row %d failed", row.id)
            outcome = ("error", err)
        with self._cv:
            if row.state in ("busy",):
                self._busy -= 1
            row.state = "ended"
            self._rows.discard(row)
            self._finished_times.append(time.monotonic())
            self._cv.notify_all()
        row.sink(*outcome)


def length_groups(items: list, length: Callable[[Any], int], slack: float) -> list[list]:
    """``items`` split into groups of similar ``length``, longest first, each padded to its
    longest by at most ``slack`` of its real positions.

    A step's rows have canvases of different lengths; one forward over all of them pads every
    row to the longest, which on a compute-bound device costs the padding in full (a 32-token
    request beside a 160-token one runs at 160). Groups bound that waste, at the price of one
    forward per group; rows of one length always share one group, with no padding at all.
    """
    groups: list[list] = []
    total = 0
    for item in sorted(items, key=length, reverse=True):
        n = length(item)
        if groups:
            group = groups[-1]
            width = length(group[0])  # the group's longest: it came first
            if width * (len(group) + 1) <= (1 + slack) * (total + n):
                group.append(item)
                total += n
                continue
        groups.append([item])
        total = n
    return groups


class _OwnForward:
    """A cached row's step forward: the model's own, run by the scheduler in the row's step."""

    def __init__(self, inner, park: Callable[[Callable[[], torch.Tensor]], torch.Tensor]) -> None:
        self.inner, self.park = inner, park

    def start_block(self, lo: int, hi: int) -> None:
        self.inner.start_block(lo, hi)

    def __call__(self, tokens: torch.Tensor) -> torch.Tensor:
        return self.park(lambda: self.inner(tokens))


def _row_event(event: StepEvent) -> StepEvent:
    """The one-row event with host copies of its tensors, safe to hand to another thread."""
    return StepEvent(event.step, event.block, event.committed.cpu(), event.region.cpu(), event.nfe)
