"""Many sandboxed programs at once: ``SandboxPool(workers, max_pending)``.

``workers`` threads each run one program at a time through ``run_python`` (a thread only
waits on its child process, so the threads cost no CPU of their own). Jobs wait in a queue of
at most ``max_pending``: ``submit`` blocks while it is full, so a producer that makes
programs faster than they run never holds more than ``max_pending`` of them in memory.
``map`` returns results in the order of its inputs. Used as a context manager the pool shuts
down on exit: the queued jobs are run (or, when the block raised, cancelled) and the threads
joined.

    with SandboxPool(workers=4) as pool:
        results = pool.map(programs, limits=SandboxLimits(wall_seconds=3))
"""

from __future__ import annotations

import os
import queue
import threading
from collections.abc import Iterable, Mapping
from concurrent.futures import Future
from dataclasses import dataclass, field
from types import TracebackType

from .limits import SandboxLimitError, SandboxLimits
from .result import SandboxResult
from .runner import run_python

__all__ = ["SandboxJob", "SandboxPool"]


@dataclass(frozen=True)
class SandboxJob:
    """One program and what it runs with (``run_python``'s arguments)."""

    source: str
    stdin: str | bytes = ""
    files: Mapping[str, str | bytes] = field(default_factory=dict)
    limits: SandboxLimits | None = None


class SandboxPool:
    """``workers`` programs run in parallel; at most ``max_pending`` more wait their turn."""

    def __init__(
        self,
        workers: int | None = None,
        max_pending: int | None = None,
        limits: SandboxLimits | None = None,
    ) -> None:
        workers = (os.cpu_count() or 1) if workers is None else workers
        max_pending = 2 * workers if max_pending is None else max_pending
        for name, value in (("workers", workers), ("max_pending", max_pending)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise SandboxLimitError(
                    f"SandboxPool {name} must be a whole number of at least 1; got {value!r}"
                )
        self.workers = workers
        self.max_pending = max_pending
        self.limits = limits or SandboxLimits()
        self._jobs: queue.Queue[tuple[Future, SandboxJob] | None] = queue.Queue(max_pending)
        self._closed = False
        self._lock = threading.Lock()
        self._threads = [
            threading.Thread(target=self._work, name=f"dlm-sandbox-{i}", daemon=True)
            for i in range(workers)
        ]
        for thread in self._threads:
            thread.start()

    # ------------------------------------------------------------------ submitting
    def submit(
        self,
        source: str,
        *,
        stdin: str | bytes = "",
        files: Mapping[str, str | bytes] | None = None,
        limits: SandboxLimits | None = None,
    ) -> Future[SandboxResult]:
        """Queue one program (blocks while ``max_pending`` are already waiting)."""
        return self.submit_job(SandboxJob(source, stdin, dict(files or {}), limits))

    def submit_job(self, job: SandboxJob) -> Future[SandboxResult]:
        with self._lock:
            if self._closed:
                raise RuntimeError("this SandboxPool is shut down; make a new one")
        future: Future[SandboxResult] = Future()
        self._jobs.put((future, job))
        return future

    def map(
        self,
        sources: Iterable[str],
        *,
        stdin: str | bytes = "",
        limits: SandboxLimits | None = None,
    ) -> list[SandboxResult]:
        """Run every program; their results in the order given."""
        return self.run_jobs(SandboxJob(source, stdin, {}, limits) for source in sources)

    def run_jobs(self, jobs: Iterable[SandboxJob]) -> list[SandboxResult]:
        """Run every job; their results in the order given."""
        futures = [self.submit_job(job) for job in jobs]
        return [future.result() for future in futures]

    # ------------------------------------------------------------------ running
    def _work(self) -> None:
        while True:
            item = self._jobs.get()
            if item is None:
                return
            future, job = item
            if not future.set_running_or_notify_cancel():
                continue
            try:
                result = run_python(
                    job.source, stdin=job.stdin, files=job.files, limits=job.limits or self.limits
                )
            except BaseException as error:  # handed to the caller through the future
                future.set_exception(error)
            else:
                future.set_result(result)

    # ------------------------------------------------------------------ shutting down
    def shutdown(self, wait: bool = True, cancel_pending: bool = False) -> None:
        """Stop taking jobs; with ``cancel_pending`` drop the queued ones (their futures are
        cancelled); with ``wait`` return once the running ones are done."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
        if cancel_pending:
            self._cancel_queued()
        for _ in self._threads:
            self._jobs.put(None)
        if wait:
            for thread in self._threads:
                thread.join()

    def _cancel_queued(self) -> None:
        while True:
            try:
                item = self._jobs.get_nowait()
            except queue.Empty:
                return
            if item is not None:
                item[0].cancel()

    def __enter__(self) -> SandboxPool:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self.shutdown(wait=True, cancel_pending=kind is not None)
