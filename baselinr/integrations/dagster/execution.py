"""Profile some of a plan's tasks into a Baselinr run from inside an orchestrator step.

No Dagster here: this is the runner's own machinery (``Runner``, ``TaskExecutor``,
``StateStore``) driven one step at a time, so results and task state land exactly where
``baselinr apply`` puts them and ``baselinr status`` / ``resume`` see them.

Constraints:
- Many steps of one run execute at once (Dagster's multiprocess executor), so a step never
  takes the run's lease. It refuses to start while a ``baselinr apply/resume`` holds it.
- Results are written with the "succeeded" mark in one transaction and replace any earlier
  rows of the same (run, table), so a retried or re-executed step never doubles a result set.
- Each step settles the run's status after its tasks end (see ``settle_run_status``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable

from sqlalchemy import and_, select, update
from sqlalchemy.exc import IntegrityError

from baselinr.config import BaselinrConfig
from baselinr.config.models import MonitoringConfig, RetryConfig
from baselinr.events import build_event_bus
from baselinr.errors import PlanError, StateError
from baselinr.runner import RunOptions, Runner, RunStatus, StateStore, TaskStatus, open_state
from baselinr.runner.reporter import SilentReporter
from baselinr.runner.state import TaskRow, utcnow
from baselinr.runner.warehouses import dispose, open_engines, plan_connections, secrets_of
from baselinr.utils.logging import RunContext
from planner import dumps_plan
from planner.models import Plan, TaskSpec


@dataclass(frozen=True)
class StoredProfile:
    """The ``runs`` row a succeeded task wrote: what the asset reports as metadata."""

    row_count: int | None
    column_count: int | None
    duration_seconds: float | None


@dataclass(frozen=True)
class StepResult:
    """Final state of each task a step ran, and the stored profile of those that succeeded."""

    run_id: str
    tasks: dict[str, TaskRow]
    profiles: dict[str, StoredProfile]

    @property
    def failed(self) -> list[TaskRow]:
        return [row for row in self.tasks.values() if row.status != TaskStatus.SUCCEEDED]


@dataclass(frozen=True)
class PlanTarget:
    """A verified plan and the config that supplies storage, credentials and retries (or None)."""

    plan: Plan
    config: BaselinrConfig | None

    def check_connections(self) -> None:
        """Raise ``ConfigError`` now, at definition time, when a warehouse has no connection."""
        plan_connections(self.plan, self.config)

    def run_tasks(self, run_id: str, task_ids: Iterable[str], max_workers: int = 1) -> StepResult:
        """Profile ``task_ids`` into run ``run_id`` (created on first use); never raises for a task failure.

        Raises ``BaselinrError`` subclasses when the run cannot be used: the stored run belongs
        to another plan (``PlanError``), or a Baselinr runner holds its lease (``StateError``).
        """
        wanted = set(task_ids)
        store = open_state(self.config)
        try:
            ensure_run(store, self.plan, run_id)
            store.set_run_status(run_id, RunStatus.RUNNING)
            connections = plan_connections(self.plan, self.config)
            engines = open_engines(connections, max_workers)
            bus = build_event_bus(_without_metrics_server(self.config),  # no run_started: the context names the run
                                  context=RunContext(run_id=run_id, environment=self.plan.environment, command="dagster"))
            try:
                Runner(store, self.plan, run_id, engines, self.config.retry if self.config else RetryConfig(),
                       secrets_of(connections, self.config), RunOptions(max_workers=max_workers),
                       SilentReporter(), bus, whole_run=False).execute(wanted, done=set())
            finally:
                bus.close()
                dispose(engines)
            settle_run_status(store, run_id)
            rows = {row.task_id: row for row in store.tasks(run_id) if row.task_id in wanted}
            profiles = stored_profiles(store, run_id, [self.plan.task(t) for t, row in rows.items()
                                                       if row.status == TaskStatus.SUCCEEDED])
            return StepResult(run_id, rows, profiles)
        finally:
            store.engine.dispose()


def ensure_run(store: StateStore, plan: Plan, run_id: str) -> None:
    """Create the run with every task pending unless it exists; check it is this plan's and free."""
    try:
        store.run(run_id)
    except StateError:
        try:
            store.create_run(plan, dumps_plan(plan), run_id)
        except IntegrityError:
            pass  # another step of the same orchestrator run created it first
    try:
        store.check_plan_matches(run_id, plan)
    except PlanError:
        raise PlanError(f"run {run_id} was started with another plan; launch a new run (not a re-execution) "
                        "to profile this plan") from None
    row = store.run(run_id)
    if row.lease_owner is not None and row.lease_expires_at is not None and row.lease_expires_at > utcnow():
        raise StateError(f"run {run_id} is being executed by a baselinr runner (host {row.host}, pid {row.pid}); "
                         "wait for it to finish")


def _without_metrics_server(config: BaselinrConfig | None) -> BaselinrConfig:
    """The config for a step's event bus: hooks as configured, but no metrics HTTP server, which
    concurrent steps would all try to bind (Dagster has its own run observability)."""
    config = config or BaselinrConfig()
    return config.model_copy(update={"monitoring": MonitoringConfig()})


def settle_run_status(store: StateStore, run_id: str) -> RunStatus:
    """Set the run's status from its tasks: succeeded when all did, running while any runs, else failed.

    Steps finishing at once each call this; the first statement locks the run's row (PostgreSQL
    row lock, SQLite write lock), so settles are serialized and the last one sees every task's
    committed state. "failed" means resumable: some task failed, or was never started.
    """
    runs, tasks = store.plan_runs, store.task_runs
    with store.engine.begin() as conn:
        conn.execute(update(runs).where(runs.c.run_id == run_id).values(status=runs.c.status))
        statuses = {TaskStatus(s) for s in conn.execute(select(tasks.c.status).where(tasks.c.run_id == run_id)).scalars()}
        if statuses <= {TaskStatus.SUCCEEDED}:
            status = RunStatus.SUCCEEDED
        else:
            status = RunStatus.RUNNING if TaskStatus.RUNNING in statuses else RunStatus.FAILED
        conn.execute(update(runs).where(runs.c.run_id == run_id).values(
            status=status, finished_at=None if status == RunStatus.RUNNING else utcnow()))
    return status


def stored_profiles(store: StateStore, run_id: str, tasks: list[TaskSpec]) -> dict[str, StoredProfile]:
    """The stored ``runs`` rows of ``tasks`` in ``run_id``, by task id."""
    runs = store.storage.tables.runs
    out: dict[str, StoredProfile] = {}
    with store.engine.connect() as conn:
        for task in tasks:
            row: Any = conn.execute(select(runs.c.row_count, runs.c.column_count, runs.c.duration_seconds).where(and_(
                runs.c.run_id == run_id, runs.c.warehouse_name == task.warehouse,
                runs.c.schema_name == task.schema_, runs.c.dataset_name == task.table))).first()
            if row is not None:
                out[task.id] = StoredProfile(row.row_count, row.column_count, row.duration_seconds)
    return out
