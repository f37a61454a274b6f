"""What a resume re-runs and why, and cancelling a dead runner's queries still on the server."""

from __future__ import annotations

import logging
import re
from collections import defaultdict

from sqlalchemy import and_, func, select, table, column
from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError

from baselinr.connectors import inspect_schema
from baselinr.errors import BaselinrError, StalePlanError, StateError
from baselinr.runner.executor import application_name, describe_change
from baselinr.runner.outcome import TaskStatus
from baselinr.runner.state import RunRow, TaskRow
from planner.models import Plan, TaskSpec

logger = logging.getLogger("baselinr.runner")

# The executor's message: "stale plan: <task> changed since the plan (<what>); re-run baselinr plan".
_STALE_RE = re.compile(r" changed since the plan \((.*)\); re-run baselinr plan$")
_pg_stat_activity = table("pg_stat_activity", column("pid"), column("application_name"), column("state"))


def resume_reasons(plan: Plan, rows: list[TaskRow]) -> dict[str, str]:
    """Every task that did not succeed, in plan order, with why it runs again."""
    by_id = {r.task_id: r for r in rows}
    reasons: dict[str, str] = {}
    for task in plan.tasks:
        row = by_id[task.id]
        if row.status == TaskStatus.SUCCEEDED:
            continue
        reasons[task.id] = reason_for(row)
    return reasons


def reason_for(row: TaskRow) -> str:
    """One phrase: "failed: X", "stale: ...", "interrupted", "never started", "skipped: upstream Y failed"."""
    if row.status == TaskStatus.RUNNING:
        return "interrupted"
    if row.status == TaskStatus.PENDING:
        return "never started"
    stale = _STALE_RE.search(row.error_message or "") if row.error_type == StalePlanError.__name__ else None
    if row.status == TaskStatus.FAILED and stale:
        return f"stale: {stale.group(1)}"
    return f"{row.status}: {row.error_message}"


def mark_stale(plan: Plan, reasons: dict[str, str], engines: dict[str, Engine]) -> dict[str, str]:
    """``reasons`` with "stale: <what changed>" for each task whose table changed since the plan
    (and "was stale: ...; matches the plan again" for one that failed as stale and was put back).

    One bulk listing per (warehouse, schema) of the tasks to re-run, as the planner reads them; a
    warehouse that cannot be listed now is left for the run to report per task.
    """
    by_schema: dict[tuple[str, str], list[TaskSpec]] = defaultdict(list)
    for task_id in reasons:
        task = plan.task(task_id)
        by_schema[(task.warehouse, task.schema_)].append(task)
    marked = dict(reasons)
    for (warehouse, schema), tasks in sorted(by_schema.items()):
        try:
            current = {t.name: t for t in inspect_schema(engines[warehouse], warehouse, schema, warnings=[])}
        except BaselinrError:
            continue
        for task in tasks:
            change = describe_change(task, current.get(task.table))
            if change is not None:
                marked[task.id] = f"stale: {change}"
            elif marked[task.id].startswith("stale: "):  # failed as stale, since put back as planned
                marked[task.id] = f"was {marked[task.id]}; matches the plan again"
    return marked


def refuse_orchestrated(run: RunRow, rows: list[TaskRow]) -> None:
    """Raise ``StateError`` when an orchestrator may still be executing the run.

    Steps of an orchestrator (Dagster) share a run without its lease, so "running" cannot be told
    from "interrupted" there. A run a step created has no runner host; while such a run has a task
    running, resuming it would profile those tables a second time beside the orchestrator.
    """
    running = [r.task_id for r in rows if r.status == TaskStatus.RUNNING]
    if run.host is None and running:
        raise StateError(f"run {run.run_id} is driven by an orchestrator (Dagster) and {len(running)} task(s) are "
                         f"running in it (e.g. {running[0]}); re-execute it from the orchestrator instead")


def cancel_orphans(run_id: str, engines: dict[str, Engine]) -> list[int]:
    """Terminate the PostgreSQL backends a dead runner of this run left on the server; their pids.

    Called by ``resume`` under the run's lease, so no live runner uses the run: every backend whose
    ``application_name`` is this run's is an orphan, whether or not its pid reached the state
    table before the crash. Other sessions (another name) are never touched.
    """
    killed: list[int] = []
    for name, engine in sorted(engines.items()):
        if engine.dialect.name != "postgresql":
            continue
        query = select(_pg_stat_activity.c.pid, func.pg_terminate_backend(_pg_stat_activity.c.pid)).where(and_(
            _pg_stat_activity.c.application_name == application_name(run_id),
            _pg_stat_activity.c.pid != func.pg_backend_pid()))
        try:
            with engine.begin() as conn:
                killed += sorted(pid for pid, terminated in conn.execute(query) if terminated)
        except SQLAlchemyError as exc:  # best effort: an orphan ends when its query does
            logger.warning("could not cancel the queries left on %s by run %s: %s", name, run_id,
                           str(exc).splitlines()[0])
    return killed
