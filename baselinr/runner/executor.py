"""Executes one task: connect, note the backend pid, check the plan is not stale, profile, retry.

Runs in a worker thread (or the calling thread when sequential). It never writes run state:
it returns a ``TaskOutcome`` and reports the backend pid through ``on_backend_pid``; the
runner's main loop is the one writer.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from typing import Any, Callable, Iterator

from sqlalchemy import func, select
from sqlalchemy.engine import Connection, Engine

from baselinr.config.models import RetryConfig
from baselinr.connectors import TableInfo, inspect_table
from baselinr.errors import StalePlanError
from baselinr.events import bus as ev
from baselinr.events.bus import EventBus
from baselinr.profiling import profile_table
from baselinr.profiling.result import ProfilingResult
from baselinr.runner.failures import as_task_error, backoff_seconds, max_attempts
from baselinr.runner.outcome import TaskOutcome
from baselinr.runner.state import utcnow
from planner.models import TaskSpec

BackendPidCallback = Callable[[str, int], None]
logger = logging.getLogger("baselinr.runner")
# How to stop a driver connection's running query from another thread (or a signal handler).
_CANCEL_METHOD = {"sqlite": "interrupt", "duckdb": "interrupt", "postgresql": "cancel"}
# SQLite runs the abort check every this many virtual-machine steps (well under a millisecond).
_SQLITE_CHECK_STEPS = 10_000


def application_name(run_id: str) -> str:
    """PostgreSQL ``application_name`` of a run's connections: lets resume find its orphans."""
    return f"baselinr:{run_id}"[:63]


def stale_reason(conn: Connection, task: TaskSpec) -> str | None:
    """Why the table no longer matches the plan, or None when it still does."""
    return describe_change(task, inspect_table(conn, task.warehouse, task.schema_, task.table))


def describe_change(task: TaskSpec, current: TableInfo | None) -> str | None:
    """What changed since the plan ("table gone", "column x dropped", ...), given the table as it
    is now (None: gone); None when its columns still match the plan's fingerprint."""
    if current is None:
        return "table gone"
    if current.fingerprint == task.fingerprint:
        return None
    now = {c.name: c.type for c in current.columns}
    changes = [f"column {c.name} dropped" if c.name not in now else f"column {c.name} {c.type} -> {now[c.name]}"
               for c in task.columns if now.get(c.name) != c.type]
    return "; ".join(changes) or "columns added or changed"


class TaskExecutor:
    """Profiles tasks against their warehouses' engines, retrying transient failures."""

    def __init__(self, run_id: str, engines: dict[str, Engine], retry: RetryConfig, secrets: list[str],
                 event_bus: EventBus, on_backend_pid: BackendPidCallback | None = None,
                 stop: threading.Event | None = None) -> None:
        self.run_id, self.engines, self.retry, self.secrets = run_id, engines, retry, secrets
        self.bus, self.on_backend_pid = event_bus, on_backend_pid
        self.stop = stop or threading.Event()  # no retry, no new attempt (first Ctrl-C, fail-fast)
        self.aborted = threading.Event()  # stop the running queries too (second Ctrl-C)
        self._running: dict[int, tuple[str, Any]] = {}  # thread id -> (dialect, driver connection)
        self._lock = threading.Lock()

    def abort(self) -> None:
        """Stop every running query now, on the server too; safe from a signal handler or any thread.

        SQLite and DuckDB are interrupted, PostgreSQL gets a cancel request; SQLite also refuses
        every later statement of the task (profiling retries a failed select in parts).
        """
        self.aborted.set()
        with self._lock:
            running = list(self._running.values())
        for dialect, driver in running:
            try:
                getattr(driver, _CANCEL_METHOD[dialect])()
            except Exception as exc:  # noqa: BLE001 - best effort: the process is about to exit
                logger.warning("could not cancel a running %s query: %s", dialect, exc)

    @contextlib.contextmanager
    def _cancellable(self, conn: Connection) -> Iterator[None]:
        """Register the connection's running query with ``abort`` for the block."""
        dialect, driver = conn.dialect.name, conn.connection.driver_connection
        if dialect not in _CANCEL_METHOD:
            yield
            return
        if dialect == "sqlite":
            driver.set_progress_handler(lambda: int(self.aborted.is_set()), _SQLITE_CHECK_STEPS)
        key = threading.get_ident()
        with self._lock:
            self._running[key] = (dialect, driver)
        try:
            yield
        finally:
            with self._lock:
                del self._running[key]
            if dialect == "sqlite":
                driver.set_progress_handler(None, 0)

    def execute(self, task: TaskSpec) -> TaskOutcome:
        """Run the task to its final outcome (never raises for a task failure)."""
        started = utcnow()
        table = f"{task.schema_}.{task.table}"
        where = {"table": table, "task_id": task.id, "warehouse": task.warehouse}
        attempts, attempt = max_attempts(self.retry), 0
        while True:
            attempt += 1
            self.bus.emit(ev.PROFILING_STARTED, **where, attempt=attempt)
            try:
                result = self._attempt(task)
            except Exception as exc:  # noqa: BLE001 - every failure becomes this task's outcome
                if self.aborted.is_set():  # our own cancel (second Ctrl-C): interrupted, not a failure to report
                    return TaskOutcome(task_id=task.id, succeeded=False, attempts=attempt, started_at=started,
                                       finished_at=utcnow(), error_type="Interrupted", error_message="interrupted")
                error = as_task_error(exc, self.secrets)
                will_retry = error.transient and attempt < attempts and not self.stop.is_set()
                self.bus.emit(ev.PROFILING_FAILED, **where, error=str(error),
                              error_type=error.error_type, attempt=attempt, will_retry=will_retry)
                if will_retry and not self.stop.wait(backoff_seconds(self.retry, attempt)):
                    continue
                self.bus.emit(ev.TABLE_PROFILING_FAILED, **where, error=str(error),
                              error_type=error.error_type)
                return TaskOutcome(task_id=task.id, succeeded=False, attempts=attempt, started_at=started,
                                   finished_at=utcnow(), error_type=error.error_type, error_message=str(error))
            failed_metrics = [f"{c.name}.{metric}: {why}" for c in result.columns for metric, why in c.errors.items()]
            if failed_metrics:  # the table succeeded; these are stored with their reason, value NULL
                logger.warning("%s: %d metric(s) could not be computed: %s", task.id, len(failed_metrics),
                               "; ".join(failed_metrics))
            self.bus.emit(ev.PROFILING_COMPLETED, **where, row_count=result.row_count,
                          column_count=len(result.columns), duration_seconds=result.duration_seconds,
                          failed_metrics=len(failed_metrics))
            return TaskOutcome(task_id=task.id, succeeded=True, attempts=attempt, started_at=started,
                               finished_at=utcnow(), result=result)

    def _attempt(self, task: TaskSpec) -> ProfilingResult:
        with self.engines[task.warehouse].connect() as conn, self._cancellable(conn):
            if conn.dialect.name == "postgresql":
                pid = conn.execute(select(func.pg_backend_pid(), func.set_config(
                    "application_name", application_name(self.run_id), False))).first()[0]
                conn.commit()  # a session setting set in a rolled-back transaction would revert
                if self.on_backend_pid is not None:
                    self.on_backend_pid(task.id, pid)
            reason = stale_reason(conn, task)
            if reason is not None:
                raise StalePlanError(f"stale plan: {task.id} changed since the plan ({reason}); re-run baselinr plan")
            return profile_table(conn, task)
