"""``SandboxPool``: programs in parallel, results in order, a bounded queue, clean shutdown."""

from __future__ import annotations

import threading
import time

import pytest

from dlm.sandbox import SandboxJob, SandboxLimits, SandboxPool, Status


def test_map_keeps_the_order_of_its_inputs():
    # the first programs sleep longest, so they finish last
    sources = [f"import time\ntime.sleep({0.05 * (5 - i)})\nprint({i})" for i in range(6)]
    with SandboxPool(workers=3) as pool:
        results = pool.map(sources)
    assert [r.stdout for r in results] == [f"{i}\n" for i in range(6)]
    assert all(r.status is Status.OK for r in results)


def test_workers_run_in_parallel():
    sources = ["import time\ntime.sleep(0.4)"] * 4
    start = time.monotonic()
    with SandboxPool(workers=4) as pool:
        results = pool.map(sources)
    assert time.monotonic() - start < 1.2  # one after another it would take at least 1.6 s
    assert [r.status for r in results] == [Status.OK] * 4


def test_submit_blocks_while_the_queue_is_full():
    pool = SandboxPool(workers=1, max_pending=1)
    try:
        first = pool.submit("import time\ntime.sleep(0.5)")  # taken by the worker
        time.sleep(0.1)
        second = pool.submit("print(2)")  # waits in the queue, which is now full
        submitted = threading.Event()

        def third():
            pool.submit("print(3)")
            submitted.set()

        threading.Thread(target=third).start()
        assert not submitted.wait(0.2)  # blocked behind the full queue
        assert submitted.wait(2)  # freed once the worker took the second
        assert first.result().status is Status.OK and second.result().stdout == "2\n"
    finally:
        pool.shutdown()


def test_jobs_carry_their_own_stdin_files_and_limits():
    jobs = [
        SandboxJob("print(input()[::-1])", stdin="abc"),
        SandboxJob("import m\nprint(m.X)", files={"m.py": "X = 42"}),
        SandboxJob("while True:\n    pass", limits=SandboxLimits(wall_seconds=0.3)),
    ]
    with SandboxPool(workers=2) as pool:
        results = pool.run_jobs(jobs)
    assert [r.stdout for r in results[:2]] == ["cba\n", "42\n"]
    assert results[2].status is Status.TIMEOUT


def test_the_pool_limits_apply_when_a_job_gives_none():
    with SandboxPool(workers=1, limits=SandboxLimits(max_output_bytes=3)) as pool:
        assert pool.submit("print('abcdef')").result().stdout == "abc"


def test_a_pool_refuses_work_after_shutdown_and_cancels_what_was_queued():
    pool = SandboxPool(workers=1, max_pending=4)
    running = pool.submit("import time\ntime.sleep(0.3)")
    time.sleep(0.1)
    queued = [pool.submit("print(1)") for _ in range(3)]
    pool.shutdown(cancel_pending=True)
    assert running.result().status is Status.OK
    assert all(f.cancelled() for f in queued)
    with pytest.raises(RuntimeError, match="shut down"):
        pool.submit("print(1)")
    assert all(not t.is_alive() for t in pool._threads)


def test_leaving_the_block_with_an_error_cancels_the_queue():
    with pytest.raises(KeyError), SandboxPool(workers=1, max_pending=3) as pool:
        pool.submit("import time\ntime.sleep(0.2)")
        time.sleep(0.05)
        queued = pool.submit("print(1)")
        raise KeyError("stop")
    assert queued.cancelled()
