"""WorkerPool: refuses sequential sizes, bounded queue blocks submit, results and exceptions kept."""

from __future__ import annotations

import threading

import pytest

from baselinr.utils.worker_pool import WorkerPool


@pytest.mark.parametrize("n", [0, 1])
def test_refuses_one_worker_and_says_use_sequential(n):
    with pytest.raises(ValueError, match="sequential"):
        WorkerPool(n)


def test_bounded_queue_blocks_submit_until_a_slot_frees():
    release = threading.Event()
    pool = WorkerPool(2, queue_size=1)
    futures = [pool.submit(release.wait) for _ in range(3)]  # 2 running + 1 queued: full
    submitted = threading.Event()

    def producer():
        futures.append(pool.submit(lambda: "late"))
        submitted.set()

    thread = threading.Thread(target=producer)
    thread.start()
    assert not submitted.wait(0.3), "submit must block while workers + queue are full"
    assert pool.active == 3
    release.set()
    assert submitted.wait(5)
    thread.join()
    assert pool.wait_for_completion(futures) == [True, True, True, "late"]
    pool.shutdown()


def test_one_failure_never_hides_the_others():
    def work(i):
        if i % 2:
            raise RuntimeError(f"boom {i}")
        return i * 10

    with WorkerPool(3) as pool:
        futures = pool.submit_batch([(work, (i,), {}) for i in range(6)])
        out = pool.wait_for_completion(futures)
    assert [x for x in out if not isinstance(x, Exception)] == [0, 20, 40]
    assert [str(x) for x in out if isinstance(x, Exception)] == ["boom 1", "boom 3", "boom 5"]


def test_runs_in_parallel_threads():
    barrier = threading.Barrier(4, timeout=5)
    with WorkerPool(4) as pool:
        out = pool.wait_for_completion([pool.submit(barrier.wait) for _ in range(4)])
    # A barrier of 4 only opens when 4 workers wait at once.
    assert sorted(out) == [0, 1, 2, 3]


def test_wait_timeout_reports_unfinished_and_shutdown_cancels_queued():
    release = threading.Event()
    pool = WorkerPool(2, queue_size=5)
    futures = [pool.submit(release.wait) for _ in range(4)]
    out = pool.wait_for_completion(futures, timeout=0.05)
    assert all(isinstance(x, TimeoutError) for x in out)
    pool.shutdown(wait=True, timeout=0.05)
    assert [f.cancelled() for f in futures] == [False, False, True, True]
    release.set()
    assert pool.wait_for_completion(futures[:2], timeout=5) == [True, True]
