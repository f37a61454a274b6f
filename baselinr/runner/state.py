"""The runner's durable state: one ``plan_runs`` row per run and one ``task_runs`` row per task.

Every transition is committed before the runner relies on it. A task's "succeeded" mark is
written in the same transaction as its results, so after a crash each table of a run has
exactly one result set or none, and its row says which.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from sqlalchemy import and_, desc, insert, select, update
from sqlalchemy.engine import Connection

from baselinr.errors import LeaseLostError, PlanError, StateError
from baselinr.runner.outcome import RunStatus, TaskOutcome, TaskStatus
from baselinr.storage import Storage, write_result
from planner.models import Plan


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


def aware(value: datetime | None) -> datetime | None:
    """SQLite returns naive datetimes; everything stored is UTC."""
    return value.replace(tzinfo=timezone.utc) if value is not None and value.tzinfo is None else value


def new_run_id() -> str:
    """Sortable by start time, unique across hosts."""
    return f"{utcnow():%Y%m%dT%H%M%SZ}-{uuid.uuid4().hex[:8]}"


@dataclass(frozen=True)
class RunRow:
    run_id: str
    plan_digest: str
    status: str
    environment: str
    started_at: datetime
    finished_at: datetime | None
    host: str | None
    pid: int | None
    lease_owner: str | None
    lease_expires_at: datetime | None


@dataclass(frozen=True)
class TaskRow:
    run_id: str
    task_id: str
    task_digest: str
    status: TaskStatus
    attempts: int
    started_at: datetime | None
    finished_at: datetime | None
    duration_seconds: float | None
    error_type: str | None
    error_message: str | None
    backend_pid: int | None


class StateStore:
    """Reads and writes run and task state in the storage database (SQLAlchemy Core).

    While a ``Lease`` holds a run, ``fence`` is its owner id and every write to that run checks,
    in its own transaction, that the lease is still this owner's — else it rolls back and raises
    ``LeaseLostError``. So a runner that lost its lease (paused, or cut off from the storage
    database past the lease's expiry) can never write over the runner that took the run over.
    """

    def __init__(self, storage: Storage) -> None:
        self.storage = storage
        self.engine = storage.engine
        self.plan_runs = storage.tables.plan_runs
        self.task_runs = storage.tables.task_runs
        self.fence: str | None = None

    # -- runs ---------------------------------------------------------------------------------
    def create_run(self, plan: Plan, plan_json: str, run_id: str, lease: dict[str, Any] | None = None) -> None:
        """Record the run (held by ``lease``'s columns when given) and every task as pending, in one transaction."""
        with self.engine.begin() as conn:
            conn.execute(insert(self.plan_runs).values(
                run_id=run_id, plan_digest=plan.plan_digest, plan_json=plan_json, status=RunStatus.RUNNING,
                environment=plan.environment, started_at=utcnow(), **(lease or {})))
            if plan.tasks:
                conn.execute(insert(self.task_runs), [
                    {"run_id": run_id, "task_id": t.id, "task_digest": t.digest, "status": TaskStatus.PENDING,
                     "attempts": 0} for t in plan.tasks])

    def run(self, run_id: str) -> RunRow:
        """The run's row; ``StateError`` naming the id when unknown."""
        with self.engine.connect() as conn:
            row = conn.execute(select(*self._run_columns()).where(self.plan_runs.c.run_id == run_id)).first()
        if row is None:
            raise StateError(f"unknown run id {run_id!r} (see `baselinr status` for the runs recorded)")
        return _run_row(row)

    def runs(self, limit: int = 50) -> list[RunRow]:
        """Most recent runs first."""
        query = select(*self._run_columns()).order_by(desc(self.plan_runs.c.started_at),
                                                       desc(self.plan_runs.c.run_id)).limit(limit)
        with self.engine.connect() as conn:
            return [_run_row(r) for r in conn.execute(query)]

    def latest_unfinished(self) -> RunRow | None:
        """The most recent run that did not succeed, if any."""
        query = select(*self._run_columns()).where(self.plan_runs.c.status != RunStatus.SUCCEEDED) \
            .order_by(desc(self.plan_runs.c.started_at), desc(self.plan_runs.c.run_id)).limit(1)
        with self.engine.connect() as conn:
            row = conn.execute(query).first()
        return _run_row(row) if row else None

    def plan_json(self, run_id: str) -> str:
        with self.engine.connect() as conn:
            text = conn.execute(select(self.plan_runs.c.plan_json).where(self.plan_runs.c.run_id == run_id)).scalar()
        if text is None:
            raise StateError(f"unknown run id {run_id!r}")
        return text

    def set_run_status(self, run_id: str, status: RunStatus) -> None:
        finished = None if status == RunStatus.RUNNING else utcnow()
        with self.engine.begin() as conn:
            conn.execute(update(self.plan_runs).where(self.plan_runs.c.run_id == run_id)
                         .values(status=status, finished_at=finished))
            self._check_fence(conn, run_id)

    def _check_fence(self, conn: Connection, run_id: str) -> None:
        """Inside a write transaction, after its writes: raise ``LeaseLostError`` (rolling them back)
        unless the run's lease is still ``fence``'s. The row lock (PostgreSQL ``FOR UPDATE``; SQLite
        holds the database's write lock after the writes) orders this against a takeover."""
        if self.fence is None:
            return
        owner = conn.execute(select(self.plan_runs.c.lease_owner).where(self.plan_runs.c.run_id == run_id)
                             .with_for_update()).scalar()
        if owner != self.fence:
            raise LeaseLostError(f"run {run_id}: this runner lost its lease (not renewed in time) and "
                                 f"{'another runner holds it now' if owner else 'the run was released'}; it stopped "
                                 f"without writing more state: see `baselinr status {run_id}`")

    def _run_columns(self) -> list[Any]:
        return [c for c in self.plan_runs.c if c.name != "plan_json"]

    # -- tasks --------------------------------------------------------------------------------
    def tasks(self, run_id: str) -> list[TaskRow]:
        """The run's task rows (in insertion order is not guaranteed; callers order by plan)."""
        with self.engine.connect() as conn:
            rows = conn.execute(select(self.task_runs).where(self.task_runs.c.run_id == run_id))
            return [TaskRow(**{**r._mapping, "status": TaskStatus(r.status), "started_at": aware(r.started_at),
                               "finished_at": aware(r.finished_at)}) for r in rows]

    def mark_running(self, run_id: str, task_id: str) -> datetime:
        """Committed before the task starts, so a crash leaves it visibly "interrupted"."""
        started = utcnow()
        self._update(run_id, task_id, status=TaskStatus.RUNNING, started_at=started, finished_at=None,
                     duration_seconds=None, error_type=None, error_message=None, backend_pid=None)
        return started

    def record_backend_pid(self, run_id: str, task_id: str, pid: int) -> None:
        self._update(run_id, task_id, backend_pid=pid)

    def mark_succeeded(self, run_id: str, outcome: TaskOutcome, environment: str) -> None:
        """Write the results and the "succeeded" mark in ONE transaction."""
        if outcome.result is None:
            raise ValueError(f"task {outcome.task_id} succeeded without a result")
        with self.engine.begin() as conn:
            write_result(conn, self.storage.tables, run_id, environment, outcome.result)
            self._finish(conn, run_id, outcome.task_id, TaskStatus.SUCCEEDED, outcome)
            self._check_fence(conn, run_id)

    def mark_failed(self, run_id: str, outcome: TaskOutcome) -> None:
        with self.engine.begin() as conn:
            self._finish(conn, run_id, outcome.task_id, TaskStatus.FAILED, outcome)
            self._check_fence(conn, run_id)

    def mark_not_run(self, run_id: str, task_ids: list[str], status: TaskStatus, reasons: dict[str, str]) -> None:
        """Skipped or cancelled tasks, with why, in one transaction."""
        if not task_ids:
            return
        now = utcnow()
        with self.engine.begin() as conn:
            for task_id in task_ids:  # never over a success: its results are already stored
                conn.execute(self._where(run_id, task_id).where(self.task_runs.c.status != TaskStatus.SUCCEEDED).values(
                    status=status, finished_at=now, duration_seconds=None, backend_pid=None,
                    error_type=status.value, error_message=reasons[task_id]))
            self._check_fence(conn, run_id)

    def _finish(self, conn: Connection, run_id: str, task_id: str, status: TaskStatus, outcome: TaskOutcome) -> None:
        conn.execute(self._where(run_id, task_id).values(
            status=status, attempts=self.task_runs.c.attempts + outcome.attempts,
            started_at=outcome.started_at, finished_at=outcome.finished_at,
            duration_seconds=outcome.duration_seconds, error_type=outcome.error_type,
            error_message=outcome.error_message))

    def _update(self, run_id: str, task_id: str, **values: Any) -> None:
        with self.engine.begin() as conn:
            conn.execute(self._where(run_id, task_id).values(**values))
            self._check_fence(conn, run_id)

    def _where(self, run_id: str, task_id: str) -> Any:
        return update(self.task_runs).where(and_(self.task_runs.c.run_id == run_id,
                                                 self.task_runs.c.task_id == task_id))

    def check_plan_matches(self, run_id: str, plan: Plan) -> None:
        """The stored task rows must match the plan's tasks and digests (else the state is not this plan's)."""
        rows = {t.task_id: t.task_digest for t in self.tasks(run_id)}
        spec = {t.id: t.digest for t in plan.tasks}
        if rows != spec:
            raise PlanError(f"run {run_id}: stored task state does not match its plan; start a new run with "
                            "`baselinr apply`")


def _run_row(row: Any) -> RunRow:
    m = dict(row._mapping)
    for key in ("started_at", "finished_at", "lease_expires_at"):
        m[key] = aware(m[key])
    return RunRow(**m)
