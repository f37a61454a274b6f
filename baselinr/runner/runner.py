"""The main loop: dispatch ready tasks to workers, and be the ONE writer of state and reports.

Workers (or the calling thread when ``max_workers == 1``) return ``TaskOutcome``s; this loop
records each transition durably before relying on it, skips dependents of failures, honours
``--fail-fast`` and Ctrl-C (stop scheduling, let running tasks finish, record state).
"""

from __future__ import annotations

import contextlib
import logging
import queue
import signal
import threading
import time
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Callable, Iterator

from pydantic import BaseModel, ConfigDict
from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError

from baselinr.config.models import RetryConfig
from baselinr.errors import BaselinrError, ConfigError, StalePlanError
from baselinr.events import bus as ev
from baselinr.events.bus import EventBus
from baselinr.runner.batches import BatchTracker
from baselinr.runner.executor import TaskExecutor
from baselinr.runner.outcome import RunStatus, TaskOutcome, TaskStatus
from baselinr.runner.reporter import Reporter
from baselinr.runner.scheduler import Scheduler, SchedTask
from baselinr.runner.state import StateStore, utcnow
from baselinr.runner.summary import RunSummary
from baselinr.utils.worker_pool import WorkerPool
from planner.models import Plan, TaskSpec

POLL_SECONDS = 0.5
logger = logging.getLogger("baselinr.runner")


class RunOptions(BaseModel):
    """How to execute (CLI flags); ``None`` means "as the plan says"."""

    model_config = ConfigDict(frozen=True)

    max_workers: int | None = None
    caps: dict[str, int] = {}  # warehouse -> limit replacing the plan's (still never above max_workers)
    fail_fast: bool = False
    metrics_file: str | None = None

    def caps_for(self, plan: Plan) -> dict[str, int]:
        """Effective cap per warehouse: the override or the plan's own limit, capped by max_workers.

        Raises ``ConfigError`` for an override naming a warehouse the plan does not have.
        """
        unknown = sorted(set(self.caps) - set(plan.warehouses))
        if unknown:
            raise ConfigError(f"--cap: unknown warehouse {unknown[0]!r} (the plan has: {', '.join(plan.warehouses)})")
        max_workers = self.max_workers or plan.execution.max_workers
        return {w: min(self.caps.get(w, spec.own_limit), max_workers) for w, spec in plan.warehouses.items()}


@dataclass(frozen=True)
class _BackendPid:
    task_id: str
    pid: int


class Runner:
    """Executes some of a plan's tasks into an existing run (the caller holds its lease).

    ``whole_run=False`` (a Dagster step, one of many driving the run) emits no run_started /
    run_finished and leaves the run's status to the caller.
    """

    def __init__(self, store: StateStore, plan: Plan, run_id: str, engines: dict[str, Engine], retry: RetryConfig,
                 secrets: list[str], options: RunOptions, reporter: Reporter, event_bus: EventBus, *,
                 whole_run: bool = True) -> None:
        self.whole_run = whole_run
        self.store, self.plan, self.run_id, self.engines = store, plan, run_id, engines
        self.retry, self.secrets, self.options = retry, secrets, options
        self.reporter, self.bus = reporter, event_bus
        self.max_workers = options.max_workers or plan.execution.max_workers
        self._tasks = {t.id: t for t in plan.tasks}
        self._messages: queue.Queue[_BackendPid | Future[TaskOutcome]] = queue.Queue()
        self._stop = threading.Event()
        self._interrupted = False
        self._cancelled = False
        self._free_slots = list(range(self.max_workers, 0, -1))
        self._slot_of: dict[str, int] = {}
        self._future_task: dict[Future[TaskOutcome], str] = {}
        self._queued: dict[str, int] = {}  # ready tasks per warehouse, as last emitted (queue_changed)

    def execute(self, task_ids: set[str], done: set[str]) -> RunSummary:
        """Run ``task_ids`` (the rest of the plan is ``done`` or left as recorded); return the summary."""
        started = time.monotonic()
        order = [t for t in self.plan.tasks if t.id in task_ids]
        caps = self.options.caps_for(self.plan)
        sched = Scheduler([SchedTask(t.id, t.warehouse, t.depends_on) for t in order], caps, self.max_workers, done)
        self._batches = BatchTracker(self.plan, task_ids, self.max_workers, self.bus)
        self.reporter.run_started(self.run_id, len(order), self.max_workers, caps)
        if self.whole_run:
            self.bus.emit(ev.RUN_STARTED, run_id=self.run_id, tasks=len(order), max_workers=self.max_workers)
        sequential = self.max_workers == 1
        executor = self._executor = TaskExecutor(self.run_id, self.engines, self.retry, self.secrets, self.bus,
                                                 self._record_pid if sequential else self._queue_pid, self._stop)
        pool = None if sequential else WorkerPool(self.max_workers, self.plan.execution.queue_size)
        aborted = False
        with _sigint_sets_flag(self._on_sigint):
            try:
                while not sched.finished:
                    self._dispatch(sched, executor, pool)
                    if pool is not None and not sched.finished:
                        self._receive(sched)
            except KeyboardInterrupt:
                aborted = True
                self._record_abort()
                raise
            finally:
                if pool is not None:
                    pool.shutdown(wait=not aborted)
        return self._summarize(time.monotonic() - started)

    def _on_sigint(self) -> None:
        """First Ctrl-C: start nothing more, let running tasks finish. A second one cancels the
        running queries and aborts (their tasks stay "running": resume re-runs them)."""
        if self._interrupted:
            self._executor.abort()
            raise KeyboardInterrupt
        self._interrupted = True
        self._stop.set()
        self.reporter.interrupted(len(self._slot_of))

    def _record_abort(self) -> None:
        """Second Ctrl-C: mark the run interrupted (best effort); tasks left "running" resume as interrupted."""
        if not self.whole_run:
            return
        try:
            self.store.set_run_status(self.run_id, RunStatus.INTERRUPTED)
        except (SQLAlchemyError, BaselinrError) as exc:
            logger.warning("could not record run %s as interrupted: %s", self.run_id, str(exc).splitlines()[0])

    # -- dispatch ----------------------------------------------------------------------------
    def _dispatch(self, sched: Scheduler, executor: TaskExecutor, pool: WorkerPool | None) -> None:
        while not self._check_interrupt(sched) and (task_id := sched.next_ready()) is not None:
            task = self._tasks[task_id]
            self._start(task, sched)
            if pool is None:
                outcome = executor.execute(task)
                if executor.aborted.is_set():  # the interrupt may have surfaced as the task's query error
                    raise KeyboardInterrupt
                self._finish(sched, outcome)
            else:
                future = pool.submit(executor.execute, task)
                self._future_task[future] = task_id
                future.add_done_callback(self._messages.put)
        self._emit_queue_changes(sched)

    def _emit_queue_changes(self, sched: Scheduler) -> None:
        """queue_changed for each warehouse whose count of ready-but-waiting tasks moved."""
        for warehouse in sched.caps:
            queued = sched.queued(warehouse)
            if self._queued.get(warehouse) != queued:
                self._queued[warehouse] = queued
                self.bus.emit(ev.QUEUE_CHANGED, warehouse=warehouse, queue_size=queued)

    def _check_interrupt(self, sched: Scheduler) -> bool:
        """After Ctrl-C, record every task that will not start as cancelled (once)."""
        if self._interrupted and not self._cancelled:
            self._cancelled = True
            self._not_run(sched.stop(), TaskStatus.CANCELLED, "interrupted (Ctrl-C)")
        return self._interrupted

    def _receive(self, sched: Scheduler) -> None:
        try:
            message = self._messages.get(timeout=POLL_SECONDS)
        except queue.Empty:
            return
        if isinstance(message, _BackendPid):
            self._record_pid(message.task_id, message.pid)
            return
        task_id = self._future_task.pop(message)
        error = message.exception()
        if error is None:
            self._finish(sched, message.result())
            return
        now = utcnow()  # the worker itself crashed: turn it into the same kind of result
        self._finish(sched, TaskOutcome(task_id=task_id, succeeded=False, attempts=1, started_at=now, finished_at=now,
                                        error_type=type(error).__name__, error_message=f"internal error: {error}"))

    def _queue_pid(self, task_id: str, pid: int) -> None:
        self._messages.put(_BackendPid(task_id, pid))

    def _record_pid(self, task_id: str, pid: int) -> None:
        self.store.record_backend_pid(self.run_id, task_id, pid)

    # -- transitions (all state writes happen here, in the main thread) -----------------------
    def _start(self, task: TaskSpec, sched: Scheduler) -> None:
        self.store.mark_running(self.run_id, task.id)
        slot = self._free_slots.pop()
        self._slot_of[task.id] = slot
        self._batches.started(task.id)
        self.reporter.task_changed(task.warehouse, TaskStatus.RUNNING, TaskStatus.PENDING)
        self.bus.emit(ev.WORKER_STARTED, worker_id=slot, table=task.id, warehouse=task.warehouse,
                      queue_size=sched.queued(task.warehouse), active_workers=sched.running())

    def _finish(self, sched: Scheduler, outcome: TaskOutcome) -> None:
        task = self._tasks[outcome.task_id]
        slot = self._slot_of.pop(task.id)
        self._free_slots.append(slot)
        if outcome.succeeded:
            outcome = self._store_success(outcome)
        if not outcome.succeeded:
            self.store.mark_failed(self.run_id, outcome)
            self.reporter.task_failed(task.id, outcome.error_message or "")
            self.bus.emit(ev.WORKER_FAILED, worker_id=slot, table=task.id, warehouse=task.warehouse,
                          error=outcome.error_message, error_type=outcome.error_type)
        self.bus.emit(ev.WORKER_COMPLETED, worker_id=slot, table=task.id, warehouse=task.warehouse,
                      duration_seconds=outcome.duration_seconds, success=outcome.succeeded)
        self.reporter.task_changed(task.warehouse, outcome.status, TaskStatus.RUNNING)
        self._batches.finished(task.id, outcome.status)
        skipped = sched.mark_finished(task.id, outcome.succeeded)
        self._not_run([s for s, _ in skipped], TaskStatus.SKIPPED,
                      {s: f"upstream {failed} failed" for s, failed in skipped})
        if not outcome.succeeded and self.options.fail_fast and not self._cancelled:
            self._cancelled = True
            self._stop.set()
            self._not_run(sched.stop(), TaskStatus.CANCELLED, f"--fail-fast: stopped after {task.id} failed")

    def _store_success(self, outcome: TaskOutcome) -> TaskOutcome:
        """Results + "succeeded" in one transaction; a storage failure fails the task instead."""
        try:
            self.store.mark_succeeded(self.run_id, outcome, self.plan.environment)
            return outcome
        except (SQLAlchemyError, ValueError) as exc:
            message = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
            return outcome.model_copy(update={"succeeded": False, "result": None, "error_type": type(exc).__name__,
                                              "error_message": f"cannot store results: {message}"})

    def _not_run(self, task_ids: list[str], status: TaskStatus, reason: str | dict[str, str]) -> None:
        reasons = reason if isinstance(reason, dict) else {t: reason for t in task_ids}
        self.store.mark_not_run(self.run_id, task_ids, status, reasons)
        for task_id in task_ids:
            task = self._tasks[task_id]
            self.reporter.task_changed(task.warehouse, status, TaskStatus.PENDING)
            if status == TaskStatus.SKIPPED:
                self.bus.emit(ev.TASK_SKIPPED, table=task_id, warehouse=task.warehouse, reason=reasons[task_id])
            self._batches.finished(task_id, status)

    # -- the end -------------------------------------------------------------------------------
    def _summarize(self, duration: float) -> RunSummary:
        rows = {r.task_id: r for r in self.store.tasks(self.run_id)}
        counts: dict[TaskStatus, int] = {}
        for row in rows.values():
            counts[row.status] = counts.get(row.status, 0) + 1
        if counts.get(TaskStatus.SUCCEEDED, 0) == len(rows):  # a Ctrl-C during the last task lost nothing
            status = RunStatus.SUCCEEDED
        else:
            status = RunStatus.INTERRUPTED if self._interrupted else RunStatus.FAILED
        problems = tuple((t.id, f"{rows[t.id].status}: {rows[t.id].error_message}") for t in self.plan.tasks
                         if rows[t.id].status not in (TaskStatus.SUCCEEDED, TaskStatus.PENDING))
        summary = RunSummary(run_id=self.run_id, status=status, counts=counts, total=len(rows),
                             duration_seconds=duration, problems=problems, interrupted=self._interrupted,
                             stale=sum(r.error_type == StalePlanError.__name__ for r in rows.values()))
        if self.whole_run:
            self.store.set_run_status(self.run_id, status)
            self.bus.emit(ev.RUN_FINISHED, run_id=self.run_id, status=status.value,
                          counts={k.value: v for k, v in counts.items()}, duration_seconds=duration)
        self.reporter.summary(summary)
        return summary


@contextlib.contextmanager
def _sigint_sets_flag(handler: Callable[[], None]) -> Iterator[None]:
    """Route SIGINT to ``handler`` while running (main thread only: elsewhere Python cannot)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGINT, lambda _sig, _frame: handler())
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
