"""Library entry points behind ``apply``, ``resume`` and ``status``: set up, hold the lease, run.

``apply_plan(plan, config, options)`` starts a new run; ``resume_run(run_id, config, options)``
finishes an unfinished one into the same run id. Both return a ``RunSummary`` (its
``exit_code`` is the CLI's) and raise ``BaselinrError`` subclasses for bad input (exit 2).
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from baselinr.config import BaselinrConfig
from baselinr.config.models import ConnectionConfig, StorageConfig
from baselinr.events import build_event_bus
from baselinr.events.bus import EventBus
from baselinr.errors import StateError
from baselinr.runner.lease import Lease
from baselinr.runner.outcome import RunStatus, TaskStatus
from baselinr.runner.reporter import Reporter
from baselinr.runner.resume import cancel_orphans, mark_stale, refuse_orchestrated, resume_reasons
from baselinr.runner.runner import RunOptions, Runner
from baselinr.runner.state import StateStore, new_run_id
from baselinr.runner.summary import RunSummary
from baselinr.runner.warehouses import dispose, open_engines, plan_connections, secrets_of
from baselinr.storage import open_storage, storage_errors
from baselinr.utils.logging import RunContext
from planner import dumps_plan, load_plan
from planner.models import Plan


def open_state(config: BaselinrConfig | None, *, existing: bool = False) -> StateStore:
    """The state store in the config's storage database, else the default ``.baselinr/baselinr.db``.

    ``existing`` (commands that only read or continue runs): a SQLite storage file that does not
    exist is a ``StateError`` instead of being created empty.
    """
    storage = config.storage if config else StorageConfig()
    path = storage.connection.filepath
    if existing and storage.connection.type == "sqlite" and path and not Path(path).exists():
        raise StateError(f"no runs recorded: the storage database {path} does not exist (nothing was applied with "
                         "this storage; pass -c with the config the runs used)")
    return StateStore(open_storage(storage))


@dataclass
class _Job:
    """Everything one execution needs, resolved before anything runs."""

    store: StateStore
    plan: Plan
    config: BaselinrConfig | None
    connections: dict[str, ConnectionConfig]
    options: RunOptions
    reporter: Reporter
    event_bus: EventBus | None

    @contextmanager
    def observed(self, run_id: str, command: str) -> Iterator[EventBus]:
        """The given bus, or one built for this run and closed when the block ends. Enter it before
        writing any state: a hook, port or metrics file that is bad input raises here."""
        if self.event_bus is not None:
            yield self.event_bus
            return
        bus = build_event_bus(self.config or BaselinrConfig(), metrics_file=self.options.metrics_file,
                              context=RunContext(run_id=run_id, environment=self.plan.environment, command=command))
        try:
            yield bus
        finally:
            bus.close()

    def execute(self, bus: EventBus, run_id: str, task_ids: set[str], done: set[str],
                resume_reasons: dict[str, str] | None = None) -> RunSummary:
        """Run ``task_ids``; on resume (``resume_reasons`` given) first clear the dead runner's queries
        and say what runs again and why, stale tables included."""
        max_workers = self.options.max_workers or self.plan.execution.max_workers
        config = self.config or BaselinrConfig()
        engines = open_engines(self.connections, max_workers)
        try:
            if resume_reasons is not None:
                killed = cancel_orphans(run_id, engines)
                if killed:
                    self.reporter.note(f"terminated {len(killed)} query(ies) a dead runner of this run left on the "
                                       f"server (backend pids {', '.join(map(str, killed))})")
                self.reporter.explain(run_id, mark_stale(self.plan, resume_reasons, engines))
            runner = Runner(self.store, self.plan, run_id, engines, config.retry,
                            secrets_of(self.connections, self.config), self.options, self.reporter, bus)
            return runner.execute(task_ids, done)
        finally:
            dispose(engines)


@storage_errors()  # a storage DB lost mid-run: one line, tasks not marked succeeded stay resumable
def apply_plan(plan: Plan, config: BaselinrConfig | None = None, options: RunOptions | None = None,
               reporter: Reporter | None = None, event_bus: EventBus | None = None,
               command: str = "apply") -> RunSummary | None:
    """Create a run for ``plan``, record every task pending, execute it; None when the plan has no task.

    ``command`` names the run's origin in its log records and events (``profile`` for plan + apply).
    """
    if not plan.tasks:
        (reporter or Reporter()).note("nothing to apply: the plan has no tasks"
                                      + "".join(f"\nwarning: {w}" for w in plan.warnings))
        return None
    job = _Job(open_state(config), plan, config, plan_connections(plan, config), options or RunOptions(),
               reporter or Reporter(), event_bus)
    job.options.caps_for(plan)  # an unknown --cap warehouse is bad input: refused before anything is recorded
    run_id = new_run_id()
    with job.observed(run_id, command) as bus:
        lease = Lease(job.store, run_id)
        job.store.create_run(plan, dumps_plan(plan), run_id, lease.columns())  # born held: no resume can grab it
        with lease.hold_new():
            return job.execute(bus, run_id, {t.id for t in plan.tasks}, set())


@storage_errors()  # a storage DB lost mid-run: one line, tasks not marked succeeded stay resumable
def resume_run(run_id: str | None = None, config: BaselinrConfig | None = None, options: RunOptions | None = None,
               reporter: Reporter | None = None, event_bus: EventBus | None = None) -> RunSummary | None:
    """Re-run every task of the run that did not succeed; None when there is nothing to resume.

    Without ``run_id`` picks the latest unfinished run; an unknown id raises ``StateError``.
    """
    reporter = reporter or Reporter()
    store = open_state(config, existing=True)
    row = store.run(run_id) if run_id else store.latest_unfinished()
    if row is None:
        reporter.note("nothing to resume: no unfinished run")
        return None
    plan = load_plan(store.plan_json(row.run_id))
    store.check_plan_matches(row.run_id, plan)
    job = _Job(store, plan, config, plan_connections(plan, config), options or RunOptions(), reporter, event_bus)
    job.options.caps_for(plan)  # an unknown --cap warehouse is bad input: refused before anything is recorded
    with Lease(store, row.run_id):
        rows = store.tasks(row.run_id)  # read under the lease: "running" now means interrupted
        refuse_orchestrated(row, rows)
        reasons = resume_reasons(plan, rows)
        if not reasons:
            store.set_run_status(row.run_id, RunStatus.SUCCEEDED)
            reporter.note(f"nothing to resume: every task of run {row.run_id} succeeded")
            return None
        with job.observed(row.run_id, "resume") as bus:
            store.set_run_status(row.run_id, RunStatus.RUNNING)
            done = {r.task_id for r in rows if r.status == TaskStatus.SUCCEEDED}
            return job.execute(bus, row.run_id, set(reasons), done, resume_reasons=reasons)
