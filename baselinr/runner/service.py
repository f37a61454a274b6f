"""Library entry points behind ``apply``, ``resume`` and ``status``: set up, hold the lease, run.

``apply_plan(plan, config, options)`` starts a new run; ``resume_run(run_id, config, options)``
finishes an unfinished one into the same run id. Both return a ``RunSummary`` (its
``exit_code`` is the CLI's) and raise ``BaselinrError`` subclasses for bad input.
"""

from __future__ import annotations

from baselinr.config import BaselinrConfig
from baselinr.config.models import RetryConfig, StorageConfig
from baselinr.events import build_event_bus
from baselinr.events.bus import EventBus
from baselinr.runner.lease import Lease
from baselinr.runner.outcome import RunStatus, TaskStatus
from baselinr.runner.reporter import Reporter
from baselinr.runner.resume import cancel_orphans, resume_reasons
from baselinr.runner.runner import RunOptions, Runner
from baselinr.runner.state import StateStore, new_run_id
from baselinr.runner.summary import RunSummary
from baselinr.runner.warehouses import dispose, open_engines, plan_connections, secrets_of
from baselinr.storage import open_storage
from planner import dumps_plan, load_plan
from planner.models import Plan


def open_state(config: BaselinrConfig | None) -> StateStore:
    """The state store in the config's storage database, else the default ``.baselinr/baselinr.db``."""
    return StateStore(open_storage(config.storage if config else StorageConfig()))


def apply_plan(plan: Plan, config: BaselinrConfig | None = None, options: RunOptions | None = None,
               reporter: Reporter | None = None, event_bus: EventBus | None = None) -> RunSummary:
    """Create a run for ``plan``, record every task pending, execute it."""
    options = options or RunOptions()
    connections = plan_connections(plan, config)  # bad connections fail before anything is recorded
    store = open_state(config)
    run_id = new_run_id()
    store.create_run(plan, dumps_plan(plan), run_id)
    with Lease(store, run_id):
        return _execute(store, plan, run_id, {t.id for t in plan.tasks}, set(), config, connections, options,
                        reporter or Reporter(), event_bus)


def resume_run(run_id: str | None = None, config: BaselinrConfig | None = None, options: RunOptions | None = None,
               reporter: Reporter | None = None, event_bus: EventBus | None = None) -> RunSummary | None:
    """Re-run every task of the run that did not succeed; None when there is nothing to resume."""
    options, reporter = options or RunOptions(), reporter or Reporter()
    store = open_state(config)
    row = store.run(run_id) if run_id else store.latest_unfinished()
    if row is None:
        reporter.note("nothing to resume: no unfinished run")
        return None
    plan = load_plan(store.plan_json(row.run_id))
    store.check_plan_matches(row.run_id, plan)
    connections = plan_connections(plan, config)
    with Lease(store, row.run_id):
        rows = store.tasks(row.run_id)
        reasons = resume_reasons(plan, rows)
        if not reasons:
            store.set_run_status(row.run_id, RunStatus.SUCCEEDED)
            reporter.note(f"nothing to resume: every task of run {row.run_id} succeeded")
            return None
        reporter.explain(row.run_id, reasons)
        done = {r.task_id for r in rows if r.status == TaskStatus.SUCCEEDED}
        store.set_run_status(row.run_id, RunStatus.RUNNING)
        return _execute(store, plan, row.run_id, set(reasons), done, config, connections, options, reporter,
                        event_bus, orphans=rows)


def _execute(store: StateStore, plan: Plan, run_id: str, task_ids: set[str], done: set[str],
             config: BaselinrConfig | None, connections: dict, options: RunOptions, reporter: Reporter,
             event_bus: EventBus | None, orphans: list | None = None) -> RunSummary:
    max_workers = options.max_workers or plan.execution.max_workers
    engines = open_engines(connections, max_workers)
    try:
        if orphans:
            cancel_orphans(run_id, plan, orphans, engines)
        bus = event_bus or build_event_bus(config or BaselinrConfig())
        runner = Runner(store, plan, run_id, engines, config.retry if config else RetryConfig(),
                        secrets_of(connections, config), options, reporter, bus)
        return runner.execute(task_ids, done)
    finally:
        dispose(engines)
