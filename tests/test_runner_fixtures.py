"""Helpers shared by the runner, state and crash tests (no tests here)."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from collections import Counter
from pathlib import Path
from typing import Any

import yaml
from sqlalchemy import create_engine, func, select, text
from sqlalchemy.engine import Connection, Engine

import planner
from baselinr.config import BaselinrConfig, parse_config
from baselinr.connectors import gather_catalog
from baselinr.events.bus import EventBus
from baselinr.runner import RunOptions, apply_plan
from baselinr.runner.reporter import SilentReporter
from baselinr.storage import open_storage

REPO = Path(__file__).resolve().parents[1]


def config_data(tmp_path: Path, sources: dict[str, dict], tables: list[dict], **extra: Any) -> dict[str, Any]:
    """A config mapping with storage in ``tmp_path/store.db`` and fast retries."""
    data: dict[str, Any] = {
        "environment": "test",
        "sources": sources,
        "storage": {"connection": {"type": "sqlite", "filepath": str(tmp_path / "store.db")}},
        "profiling": {"tables": tables, "metrics": ["count", "null_count", "distinct_count", "min", "max", "mean"],
                      "compute_histograms": False},
        "retry": {"retries": 2, "min_backoff": 0.01, "max_backoff": 0.05},
    }
    data.update(extra)
    return data


def make_config(data: dict[str, Any]) -> BaselinrConfig:
    return parse_config(data)


def write_config(tmp_path: Path, data: dict[str, Any], name: str = "config.yml") -> Path:
    path = tmp_path / name
    path.write_text(yaml.safe_dump(data))
    return path


def compile_plan(config: BaselinrConfig) -> planner.Plan:
    return planner.compile(config, gather_catalog(config))


class Recorder:
    """Subscribes to a bus: events in order, threads that profiled, max concurrency per warehouse."""

    def __init__(self) -> None:
        self.bus = EventBus()
        self.bus.register(self)
        self.events: list[tuple[str, dict]] = []
        self.profiling_threads: set[int] = set()
        self._running: Counter[str] = Counter()
        self.max_running: Counter[str] = Counter()
        self.max_total = 0
        self._lock = threading.Lock()

    def handle_event(self, event: Any) -> None:
        with self._lock:
            self.events.append((event.event_type, dict(event.metadata)))
            wh = event.metadata.get("warehouse")
            if event.event_type == "profiling_started":
                self.profiling_threads.add(threading.get_ident())
            elif event.event_type == "worker_started":
                self._running[wh] += 1
                self.max_running[wh] = max(self.max_running[wh], self._running[wh])
                self.max_total = max(self.max_total, sum(self._running.values()))
            elif event.event_type == "worker_completed":
                self._running[wh] -= 1

    def of(self, event_type: str) -> list[dict]:
        return [m for t, m in self.events if t == event_type]


def run_plan(plan: planner.Plan, config: BaselinrConfig, recorder: Recorder | None = None, **options: Any):
    """apply_plan with a silent reporter; returns the summary."""
    return apply_plan(plan, config, RunOptions(**options), SilentReporter(),
                      recorder.bus if recorder else EventBus())


def storage_engine(config: BaselinrConfig) -> Engine:
    return open_storage(config.storage).engine


def result_sets(config: BaselinrConfig, run_id: str) -> dict[str, int]:
    """Per table ('schema.table') of a run: how many runs rows (result sets) exist."""
    storage = open_storage(config.storage)
    runs = storage.tables.runs
    with storage.engine.connect() as conn:
        rows = conn.execute(select(runs.c.schema_name, runs.c.dataset_name, func.count())
                            .where(runs.c.run_id == run_id).group_by(runs.c.schema_name, runs.c.dataset_name))
        return {f"{s}.{t}": n for s, t, n in rows}


def stored_metrics(config: BaselinrConfig, run_id: str) -> dict[tuple[str, str, str], str | None]:
    """(table, column, metric) -> stored JSON text for one run."""
    storage = open_storage(config.storage)
    res = storage.tables.results
    with storage.engine.connect() as conn:
        rows = conn.execute(select(res.c.dataset_name, res.c.column_name, res.c.metric_name, res.c.metric_value)
                            .where(res.c.run_id == run_id))
        return {(t, c, m): v for t, c, m, v in rows}


def pg_url(conn: dict) -> str:
    return f"postgresql+psycopg://{conn['username']}@{conn['host']}:{conn['port']}/{conn['database']}"


def pg_exec(conn: dict, *statements: str) -> None:
    """Run fixed DDL/DML statements (test setup only; no user input reaches them)."""
    engine = create_engine(pg_url(conn))
    with engine.begin() as c:
        for statement in statements:
            c.execute(text(statement))
    engine.dispose()


def make_slow_views(conn: dict, names: list[str], sleep: float, rows: int = 20, stagger: float = 0.0) -> None:
    """A small base table and one view per name; the i-th sleeps ``sleep + i * stagger`` seconds once per scan."""
    pg_exec(conn, f"CREATE TABLE base AS SELECT g AS id, g * 1.5 AS amount, 'n' || g AS label "
                  f"FROM generate_series(1, {int(rows)}) g",
            *(f"CREATE VIEW {name} AS SELECT b.* FROM base b, (SELECT pg_sleep({float(sleep + i * stagger)})) s"
              for i, name in enumerate(names)))


def make_held_views(conn: dict, names: list[str]) -> None:
    """Views whose every scan sleeps 60 s while ``flag.slow`` is true: their queries outlive a killed
    runner. ``release_held_views`` makes later scans instant (a scan already sleeping keeps sleeping)."""
    pg_exec(conn, "CREATE TABLE flag AS SELECT true AS slow", "CREATE TABLE base AS SELECT 1 AS id",
            *(f"CREATE VIEW {v} AS SELECT b.* FROM base b, (SELECT pg_sleep(CASE WHEN (SELECT slow FROM flag) "
              f"THEN 60 ELSE 0 END)) s" for v in names))


def release_held_views(conn: dict) -> None:
    pg_exec(conn, "UPDATE flag SET slow = false")


def sleeping_backends(conn: Connection, run_id: str, sleeping: bool = True) -> list[int]:
    """Backend pids of the run's queries now inside ``pg_sleep`` (``query`` shows the select on the
    view, not its body, so the wait event is what tells); with ``sleeping=False`` all its backends."""
    return conn.execute(text("SELECT pid FROM pg_stat_activity WHERE application_name = :a "
                             "AND (wait_event = 'PgSleep' OR NOT :sleeping) ORDER BY pid"),
                        {"a": f"baselinr:{run_id}", "sleeping": sleeping}).scalars().all()


def cli(*args: str, cwd: Path, env: dict | None = None, timeout: float = 120) -> subprocess.CompletedProcess:
    """Run the real ``baselinr`` CLI in a subprocess."""
    return subprocess.run([sys.executable, "-m", "baselinr.cli", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=timeout, env={**os.environ, "PYTHONPATH": str(REPO), **(env or {})})


def popen_cli(*args: str, cwd: Path) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "baselinr.cli", *args], cwd=cwd, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env={**os.environ, "PYTHONPATH": str(REPO)})
