"""``baselinr status``: the recorded runs, or one run's tasks, as plain data and as a text table."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import func, select

from baselinr.runner.state import RunRow, StateStore
from planner import load_plan


def runs_status(store: StateStore) -> list[dict[str, Any]]:
    """Most recent runs first, each with its task counts per status."""
    t = store.task_runs
    counts: dict[str, dict[str, int]] = {}
    with store.engine.connect() as conn:
        for run_id, status, n in conn.execute(select(t.c.run_id, t.c.status, func.count()).group_by(t.c.run_id, t.c.status)):
            counts.setdefault(run_id, {})[status] = n
    return [{**_run_fields(r), "tasks": counts.get(r.run_id, {})} for r in store.runs()]


def run_status(store: StateStore, run_id: str) -> dict[str, Any]:
    """One run and its tasks in plan order (``StateError`` for an unknown id)."""
    run = store.run(run_id)
    rows = {r.task_id: r for r in store.tasks(run_id)}
    order = [t.id for t in load_plan(store.plan_json(run_id)).tasks]
    tasks = [{"task_id": r.task_id, "status": str(r.status), "attempts": r.attempts,
              "started_at": _iso(r.started_at), "finished_at": _iso(r.finished_at),
              "duration_seconds": r.duration_seconds, "error_type": r.error_type, "error": r.error_message}
             for r in (rows[i] for i in order if i in rows)]
    return {**_run_fields(run), "tasks": tasks}


def _run_fields(r: RunRow) -> dict[str, Any]:
    return {"run_id": r.run_id, "status": r.status, "environment": r.environment, "plan_digest": r.plan_digest,
            "started_at": _iso(r.started_at), "finished_at": _iso(r.finished_at), "host": r.host, "pid": r.pid}


def _iso(value: Any) -> str | None:
    return value.isoformat() if value is not None else None


def dumps_status(data: Any) -> str:
    return json.dumps(data, indent=2, sort_keys=True) + "\n"


def render_runs(runs: list[dict[str, Any]]) -> str:
    """One line per run: id, status, start, task counts."""
    if not runs:
        return "no runs recorded\n"
    lines = [f"{'run_id':<26} {'status':<11} {'started (UTC)':<19} tasks"]
    for r in runs:
        counts = ", ".join(f"{k} {v}" for k, v in sorted(r["tasks"].items()))
        started = r["started_at"][:19].replace("T", " ")
        lines.append(f"{r['run_id']:<26} {r['status']:<11} {started:<19} {counts}")
    return "\n".join(lines) + "\n"


def render_run(run: dict[str, Any]) -> str:
    """The run header, then one line per task: state, attempts, duration, error."""
    width = max([len(t["task_id"]) for t in run["tasks"]] + [7])
    lines = [f"run {run['run_id']}: {run['status']} (started {run['started_at']}, host {run['host']}, pid {run['pid']})",
             f"{'task':<{width}} {'status':<10} {'attempts':>8} {'seconds':>8}  error"]
    for t in run["tasks"]:
        secs = f"{t['duration_seconds']:.2f}" if t["duration_seconds"] is not None else "-"
        lines.append(f"{t['task_id']:<{width}} {t['status']:<10} {t['attempts']:>8} {secs:>8}  {t['error'] or ''}")
    return "\n".join(lines) + "\n"
