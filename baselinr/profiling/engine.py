"""``ProfileEngine``: profile a config's tables in-process, without run state (library use).

``max_workers == 1`` (the default) profiles in the calling thread, one table after another, and
creates no pool; larger values fan tables out over a ``WorkerPool``. Both paths call the same
``profile_table_task``, so they return the same results. For durable, resumable runs use
``baselinr.runner.apply_plan`` (it also honours dependencies and per-warehouse caps, which
this engine does not).
"""

from __future__ import annotations

from sqlalchemy.engine import Engine

import planner
from baselinr.config import BaselinrConfig, TableSelection
from baselinr.connectors import gather_catalog
from baselinr.errors import TaskError
from baselinr.events.bus import EventBus
from baselinr.profiling.result import ProfilingResult
from baselinr.runner.warehouses import dispose, open_engines, plan_connections
from baselinr.utils.logging import RunContext
from baselinr.utils.worker_pool import WorkerPool, profile_table_task
from planner.models import Plan, TaskSpec


class ProfileEngine:
    """Profiles the tables a config selects; failed tables are logged and left out of the result."""

    def __init__(self, config: BaselinrConfig, event_bus: EventBus | None = None,
                 run_context: RunContext | None = None) -> None:
        self.config = config
        self.event_bus = event_bus or EventBus()
        self.run_context = run_context or RunContext(environment=config.environment)
        self.max_workers = config.execution.max_workers

    def profile(self, table_patterns: list[TableSelection] | None = None) -> list[ProfilingResult]:
        """Profile ``table_patterns`` (default: the config's ``profiling.tables``), in plan order."""
        config = self.config
        if table_patterns is not None:
            profiling = config.profiling.model_copy(update={"tables": list(table_patterns)})
            config = config.model_copy(update={"profiling": profiling})
        plan = planner.compile(config, gather_catalog(config))
        engines = open_engines(plan_connections(plan, config), self.max_workers)
        try:
            if self.max_workers == 1:
                return self._profile_sequential(plan, engines)
            return self._profile_parallel(plan, engines)
        finally:
            dispose(engines)

    def profile_table(self, schema: str, table: str, source: str | None = None) -> ProfilingResult:
        """Profile one table (of warehouse ``source``, needed when the config has several) with the
        config's profiling options. Raises ``PlanError`` when the table does not exist, ``TaskError``
        when profiling it failed (the reason is logged and emitted as ``table_profiling_failed``)."""
        results = self.profile([TableSelection(table=table, schema=schema, source=source)])
        if not results:
            raise TaskError(f"profiling {schema}.{table} failed; the log says why")
        return results[0]

    def _profile_sequential(self, plan: Plan, engines: dict[str, Engine]) -> list[ProfilingResult]:
        """One table after another in the calling thread; no pool."""
        results = (self._task(engines, task) for task in plan.tasks)
        return [r for r in results if r is not None]

    def _profile_parallel(self, plan: Plan, engines: dict[str, Engine]) -> list[ProfilingResult]:
        """Tables fan out over a bounded pool; results come back in plan order."""
        with WorkerPool(self.max_workers, self.config.execution.queue_size) as pool:
            futures = [pool.submit(self._task, engines, task) for task in plan.tasks]
            results = pool.wait_for_completion(futures)
        return [r for r in results if isinstance(r, ProfilingResult)]

    def _task(self, engines: dict[str, Engine], task: TaskSpec) -> ProfilingResult | None:
        return profile_table_task(engines[task.warehouse], task, self.run_context, self.event_bus, self.config.retry)
