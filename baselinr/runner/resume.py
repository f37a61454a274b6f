"""What a resume re-runs and why, and cancelling a dead runner's queries still on the server."""

from __future__ import annotations

import logging

from sqlalchemy import and_, func, select, table, column
from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError

from baselinr.runner.executor import application_name
from baselinr.runner.outcome import TaskStatus
from baselinr.runner.state import TaskRow
from planner.models import Plan

logger = logging.getLogger("baselinr.runner")

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
    if row.status == TaskStatus.FAILED and row.error_type == "StalePlanError":
        return "stale: " + (row.error_message or "").split("(", 1)[-1].split(")", 1)[0]
    return f"{row.status}: {row.error_message}"


def cancel_orphans(run_id: str, plan: Plan, rows: list[TaskRow], engines: dict[str, Engine]) -> list[int]:
    """Terminate the PostgreSQL backends of tasks left running by a dead runner; returns their pids.

    Only a backend with this run's ``application_name`` is touched, so a pid since reused by
    another session is left alone.
    """
    killed: list[int] = []
    for row in rows:
        if row.status != TaskStatus.RUNNING or row.backend_pid is None:
            continue
        engine = engines.get(plan.task(row.task_id).warehouse)
        if engine is None or engine.dialect.name != "postgresql":
            continue
        query = select(func.pg_terminate_backend(_pg_stat_activity.c.pid)).where(and_(
            _pg_stat_activity.c.pid == row.backend_pid,
            _pg_stat_activity.c.application_name == application_name(run_id)))
        try:
            with engine.begin() as conn:
                if conn.execute(query).scalar():
                    killed.append(row.backend_pid)
        except SQLAlchemyError as exc:  # best effort: the orphan ends when its query does
            logger.warning("could not cancel backend %s of %s: %s", row.backend_pid, row.task_id,
                           str(exc).splitlines()[0])
    return killed
