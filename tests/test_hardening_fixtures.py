"""Helpers shared by the hardening tests (no tests here): run the real CLI, read what it stored."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

from baselinr.config import BaselinrConfig
from baselinr.runner import open_state
from baselinr.storage import open_storage, read_run_results
from tests.test_runner_fixtures import cli, make_config, write_config


def plan_and_apply(tmp_path: Path, data: dict[str, Any], *apply_args: str) -> tuple[BaselinrConfig, Any]:
    """``baselinr plan`` then ``baselinr apply`` in real processes; returns the config and apply's result."""
    cfg = write_config(tmp_path, data)
    plan = cli("plan", "-c", str(cfg), cwd=tmp_path)
    assert plan.returncode == 0, plan.stderr
    (tmp_path / "plan.json").write_text(plan.stdout, encoding="utf-8")
    return make_config(data), cli("apply", "plan.json", "-c", str(cfg), *apply_args, cwd=tmp_path)


def only_run_id(config: BaselinrConfig) -> str:
    runs = open_state(config).runs()
    assert len(runs) == 1, [r.run_id for r in runs]
    return runs[0].run_id


def stored(config: BaselinrConfig, run_id: str) -> dict[str, dict]:
    """Table name -> {"row_count", "columns": {column: {metric: decoded value}}} of one run."""
    storage = open_storage(config.storage)
    with storage.engine.connect() as conn:
        results = read_run_results(conn, storage.tables, run_id)
    storage.engine.dispose()
    return {table: value for (_, _, table), value in results.items()}


def task_states(config: BaselinrConfig, run_id: str) -> dict[str, tuple[str, str | None]]:
    """Task id -> (status, error message)."""
    return {r.task_id: (str(r.status), r.error_message) for r in open_state(config).tasks(run_id)}


def store_dump(path: Path) -> str:
    """Every row of a SQLite storage database as SQL text (for greps)."""
    with sqlite3.connect(path) as raw:
        return "\n".join(raw.iterdump())


def run_count(path: Path) -> int:
    """Runs recorded in a SQLite storage database; 0 when it does not exist."""
    if not path.exists():
        return 0
    with sqlite3.connect(path) as raw:
        exists = raw.execute("SELECT count(*) FROM sqlite_master WHERE name = 'baselinr_plan_runs'").fetchone()[0]
        return raw.execute("SELECT count(*) FROM baselinr_plan_runs").fetchone()[0] if exists else 0


def json_lines(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]
