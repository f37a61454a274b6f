"""A bounded thread pool for profiling tables in parallel, and the one-table worker function.

Parallelism is opt-in: ``max_workers=1`` means sequential execution in the calling thread, so
the pool refuses it rather than run one worker thread for nothing.
"""

from __future__ import annotations

import logging
import threading
from concurrent.futures import Future, ThreadPoolExecutor, wait as wait_futures
from typing import Any, Callable, Iterable

from sqlalchemy.engine import Engine

from baselinr.config.models import RetryConfig
from baselinr.events.bus import EventBus
from baselinr.profiling.result import ProfilingResult
from baselinr.utils.logging import RunContext
from planner.models import TaskSpec

logger = logging.getLogger("baselinr.worker_pool")


class WorkerPool:
    """``max_workers`` threads and at most ``queue_size`` tasks queued ahead of them.

    ``submit`` blocks while ``max_workers + queue_size`` tasks are submitted and unfinished, so
    a producer can never queue unbounded work (and unbounded memory) ahead of the workers.
    """

    def __init__(self, max_workers: int, queue_size: int = 100, warehouse_type: str = "unknown") -> None:
        if max_workers <= 1:
            raise ValueError(f"WorkerPool needs max_workers > 1 (got {max_workers}); "
                             "use sequential execution for max_workers=1")
        if queue_size < 0:
            raise ValueError(f"queue_size must be >= 0, got {queue_size}")
        self.max_workers, self.queue_size, self.warehouse_type = max_workers, queue_size, warehouse_type
        self._executor = ThreadPoolExecutor(max_workers, thread_name_prefix=f"baselinr-{warehouse_type}")
        self._slots = threading.BoundedSemaphore(max_workers + queue_size)
        self._lock = threading.Lock()
        self._pending: set[Future[Any]] = set()

    def submit(self, task: Callable[..., Any], *args: Any, **kwargs: Any) -> Future[Any]:
        """Schedule ``task(*args, **kwargs)``; blocks while the pool is full."""
        self._slots.acquire()
        submitted = False
        try:
            future = self._executor.submit(task, *args, **kwargs)
            submitted = True
        finally:
            if not submitted:  # e.g. submit after shutdown: give the slot back
                self._slots.release()
        with self._lock:
            self._pending.add(future)
        future.add_done_callback(self._done)
        return future

    def _done(self, future: Future[Any]) -> None:
        with self._lock:
            self._pending.discard(future)
        self._slots.release()

    def submit_batch(self, tasks: Iterable[tuple[Callable[..., Any], tuple[Any, ...], dict[str, Any]]]) -> list[Future[Any]]:
        """Submit ``(callable, args, kwargs)`` triples in order; returns their futures."""
        return [self.submit(fn, *args, **kwargs) for fn, args, kwargs in tasks]

    @staticmethod
    def wait_for_completion(futures: list[Future[Any]], timeout: float | None = None) -> list[Any]:
        """Each future's result or exception, in order; unfinished ones at ``timeout`` give a TimeoutError."""
        wait_futures(futures, timeout=timeout)
        out: list[Any] = []
        for future in futures:
            if not future.done():
                out.append(TimeoutError(f"task did not finish within {timeout}s"))
            elif future.exception() is not None:
                out.append(future.exception())
            else:
                out.append(future.result())
        return out

    @property
    def active(self) -> int:
        """Tasks submitted and not finished (running or queued)."""
        with self._lock:
            return len(self._pending)

    def shutdown(self, wait: bool = True, timeout: float | None = None) -> None:
        """Stop accepting work. ``wait``: let submitted tasks finish (up to ``timeout``, after which
        queued tasks are cancelled); otherwise cancel queued tasks and return at once."""
        if wait and timeout is not None:
            with self._lock:
                pending = list(self._pending)
            wait_futures(pending, timeout=timeout)
            self._executor.shutdown(wait=False, cancel_futures=True)
        else:
            self._executor.shutdown(wait=wait, cancel_futures=not wait)

    def __enter__(self) -> "WorkerPool":
        return self

    def __exit__(self, *exc: object) -> None:
        self.shutdown(wait=True)


def profile_table_task(engine: Engine, table_pattern: TaskSpec, run_context: RunContext | None = None,
                       event_bus: EventBus | None = None, retry: RetryConfig | None = None) -> ProfilingResult | None:
    """Profile one planned table in the current thread; the result, or None after logging a failure.

    Error isolation: a failure never propagates, so one bad table cannot stop a batch.
    """
    # Imported here: baselinr.runner imports this module, so a top-level import would cycle.
    from baselinr.runner.executor import TaskExecutor

    context = run_context or RunContext()
    executor = TaskExecutor(context.run_id or "adhoc", {table_pattern.warehouse: engine},
                            retry or RetryConfig(enabled=False), [], event_bus or EventBus())
    outcome = executor.execute(table_pattern)
    if not outcome.succeeded:
        logger.warning("profiling %s failed: %s", table_pattern.id, outcome.error_message)
    return outcome.result
