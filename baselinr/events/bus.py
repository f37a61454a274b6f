"""A thread-safe event bus. The runner emits; logging, metrics and user hooks subscribe.

A subscriber that raises is logged and never breaks the run or the other subscribers.
Event metadata is scrubbed of secrets (``baselinr.utils.logging.scrub``) before any subscriber
sees it. ``close()`` ends a run's delivery: subscribers that have a ``close()`` (hooks with a
sender thread, the metrics) flush and release there.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Callable, Protocol

from baselinr.utils.logging import scrub

logger = logging.getLogger("baselinr.events")

# Event types the runner emits, with the metadata keys each carries.
RUN_STARTED = "run_started"                    # run_id, tasks, max_workers
RUN_FINISHED = "run_finished"                  # run_id, status, counts{status: n}, duration_seconds
BATCH_STARTED = "batch_started"                # batch_id, batch_size, max_workers, warehouse
BATCH_COMPLETED = "batch_completed"            # batch_id, batch_size, successful, failed, skipped, cancelled,
#                                                 duration_seconds, warehouse (only for a batch that started)
WORKER_STARTED = "worker_started"              # worker_id, table, warehouse, queue_size, active_workers
WORKER_COMPLETED = "worker_completed"          # worker_id, table, warehouse, duration_seconds, success
WORKER_FAILED = "worker_failed"                # worker_id, table, warehouse, error, error_type
# The profiling_* events also carry task_id (``table`` is "schema.table" there; in the worker
# and skip events ``table`` is the task id itself).
PROFILING_STARTED = "profiling_started"        # table, warehouse, attempt
PROFILING_COMPLETED = "profiling_completed"    # table, warehouse, row_count, column_count, duration_seconds, failed_metrics
PROFILING_FAILED = "profiling_failed"          # table, warehouse, error, error_type, attempt, will_retry
TABLE_PROFILING_FAILED = "table_profiling_failed"  # table, warehouse, error, error_type (task wrapper, final)
TASK_SKIPPED = "task_skipped"                  # table, warehouse, reason
QUEUE_CHANGED = "queue_changed"                # warehouse, queue_size


@dataclass(frozen=True)
class BaseEvent:
    event_type: str
    timestamp: datetime = field(default_factory=lambda: datetime.now(timezone.utc))
    metadata: dict[str, Any] = field(default_factory=dict)


class Subscriber(Protocol):
    def handle_event(self, event: BaseEvent) -> None: ...


class EventBus:
    """Delivers each event to every subscriber in registration order, under one lock.

    The lock keeps per-subscriber delivery order identical to emission order across worker
    threads, so a hook sees a task's events in the order they happened. Subscribers must be
    quick (slow hooks hand events to their own sender thread) because emitters wait on it.
    """

    def __init__(self) -> None:
        self._subscribers: list[Subscriber | Callable[[BaseEvent], None]] = []
        self._lock = threading.RLock()
        self._closed = False

    def register(self, subscriber: Subscriber | Callable[[BaseEvent], None]) -> None:
        with self._lock:
            self._subscribers.append(subscriber)

    def emit(self, event_type: str, **metadata: Any) -> BaseEvent:
        """Build and deliver an event; returns it."""
        metadata = scrub(metadata)
        with self._lock:  # stamped under the lock: timestamps never go backwards in delivery order
            event = BaseEvent(event_type=event_type, metadata=metadata)
            for sub in self._subscribers:
                try:
                    (sub.handle_event if hasattr(sub, "handle_event") else sub)(event)
                except Exception as exc:  # noqa: BLE001 - a broken hook must not break the run
                    logger.warning("event hook %s failed on %s: %s", _name(sub), event_type, exc)
        return event

    def close(self) -> None:
        """Close every subscriber that has ``close()``, in registration order; idempotent.

        Call once when the run ends (also on failure or Ctrl-C): it flushes queued hook events,
        writes the metrics file and resets the gauges. A subscriber whose close raises is logged.
        """
        with self._lock:
            if self._closed:
                return
            self._closed = True
            for sub in self._subscribers:
                close = getattr(sub, "close", None)
                if callable(close):
                    try:
                        close()
                    except Exception as exc:  # noqa: BLE001 - one broken hook must not stop the others closing
                        logger.warning("event hook %s failed to close: %s", _name(sub), exc)

    def __enter__(self) -> "EventBus":
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()


def _name(sub: Any) -> str:
    return getattr(sub, "__qualname__", None) or type(sub).__name__
