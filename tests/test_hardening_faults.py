"""Faults during a run: server stopped, tables changed, SQLite locks, kills at several points.

Each run is a real `baselinr apply` process; afterwards the state store must say exactly what
happened and `baselinr resume` must finish the run with one result set per table.
"""

from __future__ import annotations

import json
import signal
import sqlite3
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable

import pytest
from sqlalchemy import create_engine, update

from baselinr.config import BaselinrConfig
from baselinr.runner import StateStore, open_state
from baselinr.runner.state import RunRow
from tests.conftest import create_database
from tests.pgserver import remove_server, start_server
from tests.test_crash_resume import wait_for
from tests.test_hardening_fixtures import only_run_id, run_count, stored, task_states
from tests.test_runner_fixtures import (
    cli, config_data, make_config, make_held_views, make_slow_views, pg_exec, pg_url, popen_cli, release_held_views,
    result_sets, sleeping_backends, write_config,
)

VIEWS = [f"v{i}" for i in range(4)]
FAST_LOCK = 0.3  # seconds a SQLite connection waits for a lock (busy_timeout) in these tests


def resume_completes(tmp_path: Path, cfg: Path, config, run_id: str, tables: list[str], schema: str) -> None:
    """`baselinr resume` exits 0, every task succeeded, one result set per table."""
    resumed = cli("resume", "-c", str(cfg), cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    assert set(task_states(config, run_id).values()) == {("succeeded", None)}
    assert result_sets(config, run_id) == {f"{schema}.{t}": 1 for t in tables}


def start_apply(tmp_path: Path, data: dict, *flags: str) -> tuple[subprocess.Popen, Path, BaselinrConfig, StateStore,
                                                                   RunRow]:
    """Plan ``data`` and start a real ``baselinr apply`` of it; once its run is recorded:
    (process, config path, config, state store, run row)."""
    cfg = write_config(tmp_path, data)
    config = make_config(data)
    (tmp_path / "plan.json").write_text(cli("plan", "-c", str(cfg), cwd=tmp_path).stdout)
    proc = popen_cli("apply", "plan.json", "-c", str(cfg), *flags, cwd=tmp_path)
    store = open_state(config)
    return proc, cfg, config, store, wait_for(lambda: next(iter(store.runs()), None), what="the run row")


def test_postgres_server_stopped_mid_run_fails_its_tasks_then_resume_completes(tmp_path: Path) -> None:
    server = start_server()  # a throwaway server: the shared one must keep running
    try:
        conn = create_database(server, "stopped")
        make_slow_views(conn, VIEWS, 0.5)
        data = config_data(tmp_path, {"pg": conn}, [{"pattern": "v*"}])
        proc, cfg, config, store, run = start_apply(tmp_path, data)
        wait_for(lambda: any(r.status == "succeeded" for r in store.tasks(run.run_id)), what="one task done")
        server.stop("fast")
        _, stderr = proc.communicate(timeout=60)
        assert proc.returncode == 1, stderr
        states = task_states(config, run.run_id)
        failed = {t: e for t, (s, e) in states.items() if s == "failed"}
        assert failed and all(s in ("succeeded", "failed") for s, _ in states.values())
        lost = ("Connection refused", "terminating connection", "server closed the connection unexpectedly")
        assert all(any(reason in e for reason in lost) for e in failed.values()), failed
        assert "Traceback" not in stderr

        server.start()
        resume_completes(tmp_path, cfg, config, run.run_id, VIEWS, "public")
    finally:
        remove_server(server)


def test_tables_dropped_or_altered_on_postgres_fail_as_stale_and_the_others_succeed(tmp_path: Path, pg_db: dict):
    pg_exec(pg_db, *(f"CREATE TABLE {t} AS SELECT g AS id FROM generate_series(1, 5) g" for t in ("keep", "gone", "grow")))
    data = config_data(tmp_path, {"pg": pg_db}, [{"pattern": "*"}])
    cfg = write_config(tmp_path, data)
    (tmp_path / "plan.json").write_text(cli("plan", "-c", str(cfg), cwd=tmp_path).stdout)
    pg_exec(pg_db, "DROP TABLE gone", "ALTER TABLE grow ALTER COLUMN id TYPE text")
    applied = cli("apply", "plan.json", "-c", str(cfg), cwd=tmp_path)
    assert applied.returncode == 1, applied.stderr
    config = make_config(data)
    assert task_states(config, only_run_id(config)) == {
        "pg.public.keep": ("succeeded", None),
        "pg.public.gone": ("failed", "stale plan: pg.public.gone changed since the plan (table gone); "
                                     "re-run baselinr plan"),
        "pg.public.grow": ("failed", "stale plan: pg.public.grow changed since the plan (column id INTEGER -> TEXT); "
                                     "re-run baselinr plan"),
    }


def hold_lock(path: Path) -> subprocess.Popen:
    """Another process holding an EXCLUSIVE lock on a SQLite file until killed."""
    proc = subprocess.Popen([sys.executable, "-c", "import sqlite3, sys, time\n"
                             "c = sqlite3.connect(sys.argv[1], isolation_level=None)\n"
                             "c.execute('BEGIN EXCLUSIVE')\nprint('locked', flush=True)\ntime.sleep(120)", str(path)],
                            stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline() == "locked\n"
    return proc


def release(holder: subprocess.Popen) -> None:
    holder.kill()
    holder.wait()


def integrity(path: Path) -> str:
    with sqlite3.connect(path) as raw:
        return raw.execute("PRAGMA integrity_check").fetchone()[0]


def two_sqlite_warehouses(tmp_path: Path) -> dict:
    """Warehouses ``locked`` (tables a, b) and ``free`` (table c); SQLite waits FAST_LOCK for locks."""
    for name, tables in (("locked", "ab"), ("free", "c")):
        with sqlite3.connect(tmp_path / f"{name}.db") as raw:
            for t in tables:
                raw.execute(f"CREATE TABLE {t} (id INTEGER)")
                raw.executemany(f"INSERT INTO {t} VALUES (?)", [(i,) for i in range(4)])
    sources = {name: {"type": "sqlite", "filepath": str(tmp_path / f"{name}.db"), "busy_timeout": FAST_LOCK}
               for name in ("locked", "free")}
    data = config_data(tmp_path, sources, [{"pattern": "*", "source": "locked"}, {"pattern": "*", "source": "free"}])
    data["storage"]["connection"]["busy_timeout"] = FAST_LOCK
    return data


def test_locked_sqlite_warehouse_fails_its_tasks_after_bounded_retries(tmp_path: Path) -> None:
    data = two_sqlite_warehouses(tmp_path)
    cfg = write_config(tmp_path, data)
    (tmp_path / "plan.json").write_text(cli("plan", "-c", str(cfg), cwd=tmp_path).stdout)
    holder = hold_lock(tmp_path / "locked.db")
    try:
        applied = cli("apply", "plan.json", "-c", str(cfg), cwd=tmp_path)
    finally:
        release(holder)
    assert applied.returncode == 1, applied.stderr
    config = make_config(data)
    run_id = only_run_id(config)
    rows = {r.task_id: r for r in open_state(config).tasks(run_id)}
    for task in ("locked.main.a", "locked.main.b"):  # 1 + retry.retries attempts, each waiting FAST_LOCK
        assert (rows[task].status, rows[task].attempts, rows[task].error_message) == ("failed", 3, "database is locked")
        assert f"{task}: failed: database is locked" in applied.stderr
    assert rows["free.main.c"].status == "succeeded"
    assert integrity(tmp_path / "store.db") == "ok"
    resume_completes(tmp_path, cfg, config, run_id, ["a", "b", "c"], "main")


def test_locked_storage_before_the_run_is_one_line_and_records_nothing(tmp_path: Path) -> None:
    data = two_sqlite_warehouses(tmp_path)
    cfg = write_config(tmp_path, data)
    (tmp_path / "plan.json").write_text(cli("plan", "-c", str(cfg), cwd=tmp_path).stdout)
    open_state(make_config(data))  # the storage tables exist; a writer then locks the file
    holder = hold_lock(tmp_path / "store.db")
    try:
        applied = cli("apply", "plan.json", "-c", str(cfg), cwd=tmp_path)
    finally:
        release(holder)
    assert (applied.returncode, applied.stdout, applied.stderr) == (
        2, "", "error: storage database unavailable: database is locked\n")
    assert run_count(tmp_path / "store.db") == 0 and integrity(tmp_path / "store.db") == "ok"


def test_storage_locked_at_the_end_of_a_task_never_marks_it_succeeded(tmp_path: Path, pg_db: dict) -> None:
    make_slow_views(pg_db, VIEWS, 1.0)
    data = config_data(tmp_path, {"pg": pg_db}, [{"pattern": "v*"}])
    data["storage"]["connection"]["busy_timeout"] = FAST_LOCK
    proc, cfg, config, store, run = start_apply(tmp_path, data)
    wait_for(lambda: any(r.status == "running" for r in store.tasks(run.run_id)), what="a running task")
    holder = hold_lock(tmp_path / "store.db")  # the task's results cannot be written when it ends
    try:
        _, stderr = proc.communicate(timeout=60)
    finally:
        release(holder)
    assert (proc.returncode, stderr.splitlines()[-1]) == (2, "error: storage database unavailable: database is locked")
    states = task_states(config, run.run_id)
    assert "succeeded" not in {s for s, _ in states.values()}
    assert stored(config, run.run_id) == {} and integrity(tmp_path / "store.db") == "ok"
    resume_completes(tmp_path, cfg, config, run.run_id, VIEWS, "public")


KILL_POINTS: dict[str, Callable[[list[str]], bool]] = {
    "first task running": lambda states: "running" in states,
    "one task done": lambda states: states.count("succeeded") == 1,
    "all but one done": lambda states: states.count("succeeded") == len(states) - 1,
}


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGINT], ids=["SIGKILL", "SIGINT"])
@pytest.mark.parametrize("point", KILL_POINTS)
def test_killed_apply_always_resumes_to_one_result_set_per_table(tmp_path: Path, pg_db: dict, point: str,
                                                                  sig: signal.Signals) -> None:
    # Staggered scans (0.4, 0.8, 1.2, 1.6 s on two workers) end at distinct times, so every kill point is seen.
    make_slow_views(pg_db, VIEWS, 0.4, stagger=0.4)
    data = config_data(tmp_path, {"pg": pg_db}, [{"pattern": "v*"}],
                       execution={"max_workers": 2, "warehouse_limits": {"pg": 2}})
    proc, cfg, config, store, run = start_apply(tmp_path, data)
    try:
        wait_for(lambda: KILL_POINTS[point]([str(r.status) for r in store.tasks(run.run_id)]), what=point)
        proc.send_signal(sig)
        proc.communicate(timeout=60)
    finally:
        proc.kill()
        proc.wait()
    assert proc.returncode == (-9 if sig == signal.SIGKILL else 130)
    done = {t for t, (s, _) in task_states(config, run.run_id).items() if s == "succeeded"}
    assert result_sets(config, run.run_id) == {f"public.{t.split('.')[-1]}": 1 for t in done}
    resume_completes(tmp_path, cfg, config, run.run_id, VIEWS, "public")


def test_a_paused_runner_that_lost_its_lease_never_writes_over_the_runner_that_took_over(tmp_path: Path,
                                                                                         pg_db: dict) -> None:
    make_slow_views(pg_db, VIEWS, 0.8)
    data = config_data(tmp_path, {"pg": pg_db}, [{"pattern": "v*"}])
    first, cfg, config, store, run = start_apply(tmp_path, data)
    try:
        wait_for(lambda: any(r.status == "running" for r in store.tasks(run.run_id)), what="a running task")
        first.send_signal(signal.SIGSTOP)  # paused past its lease's expiry (made to expire now)
        with store.engine.begin() as conn:
            conn.execute(update(store.plan_runs).where(store.plan_runs.c.run_id == run.run_id)
                         .values(lease_expires_at=datetime(2000, 1, 1, tzinfo=timezone.utc)))
        resume_completes(tmp_path, cfg, config, run.run_id, VIEWS, "public")
        after_resume = {r.task_id: (r.status, r.attempts, r.finished_at) for r in store.tasks(run.run_id)}
        first.send_signal(signal.SIGCONT)
        _, stderr = first.communicate(timeout=60)
    finally:
        first.kill()
        first.wait()
    assert first.returncode == 2, stderr
    assert stderr.splitlines()[-1] == (f"error: run {run.run_id}: this runner lost its lease (not renewed in time) and "
                                       f"the run was released; it stopped without writing more state: see "
                                       f"`baselinr status {run.run_id}`")
    assert {r.task_id: (r.status, r.attempts, r.finished_at) for r in store.tasks(run.run_id)} == after_resume
    assert result_sets(config, run.run_id) == {f"public.{t}": 1 for t in VIEWS}
    assert store.run(run.run_id).status == "succeeded"


def start_held_run(tmp_path: Path, pg_db: dict, *flags: str):
    """A real apply on two workers over held views, once both of its queries are sleeping:
    (process, config path, config, run row, the two sleeping backend pids, an autocommit engine)."""
    make_held_views(pg_db, VIEWS)
    data = config_data(tmp_path, {"pg": pg_db}, [{"pattern": "v*"}],
                       execution={"max_workers": 2, "warehouse_limits": {"pg": 2}})
    proc, cfg, config, _store, run = start_apply(tmp_path, data, *flags)
    engine = create_engine(pg_url(pg_db), isolation_level="AUTOCOMMIT")
    with engine.connect() as c:
        sleeping = wait_for(lambda: (lambda pids: pids if len(pids) == 2 else None)(sleeping_backends(c, run.run_id)),
                            what="two sleeping queries")
    return proc, cfg, config, run, sleeping, engine


def test_resume_after_kill_9_terminates_the_queries_the_dead_runner_left_on_the_server(tmp_path: Path,
                                                                                      pg_db: dict) -> None:
    proc, cfg, config, run, orphans, engine = start_held_run(tmp_path, pg_db)
    try:
        proc.kill()
        proc.wait()
        release_held_views(pg_db)
        with engine.connect() as c:
            assert sleeping_backends(c, run.run_id) == orphans  # still running, with no runner
            resumed = cli("resume", "-c", str(cfg), cwd=tmp_path)
            assert resumed.returncode == 0, resumed.stderr
            assert (f"terminated 2 query(ies) a dead runner of this run left on the server (backend pids "
                    f"{orphans[0]}, {orphans[1]})") in resumed.stderr
            assert sleeping_backends(c, run.run_id) == []
    finally:
        proc.kill()
        proc.wait()
        engine.dispose()
    assert result_sets(config, run.run_id) == {f"public.{v}": 1 for v in VIEWS}


@pytest.mark.parametrize("log_format", ["text", "json"])
def test_a_second_ctrl_c_cancels_running_queries_and_aborts_and_resume_finishes(tmp_path: Path, pg_db: dict,
                                                                                 log_format: str) -> None:
    proc, cfg, config, run, _sleeping, engine = start_held_run(tmp_path, pg_db, "--log-format", log_format)
    try:
        proc.send_signal(signal.SIGINT)  # first: start nothing more, let the two sleeping tasks finish
        store = open_state(config)
        wait_for(lambda: {r.status for r in store.tasks(run.run_id)} == {"running", "cancelled"},
                 what="the unstarted tasks cancelled")
        proc.send_signal(signal.SIGINT)  # second: abort now
        _, stderr = proc.communicate(timeout=30)  # the sleeping queries had ~60 s to go
        assert proc.returncode == 130, stderr
        last = stderr.strip().splitlines()[-1]
        if log_format == "json":  # stderr stays one JSON object per line, the abort included
            last = [json.loads(line) for line in stderr.strip().splitlines()][-1]["message"]
        assert last.startswith("aborted; finished tasks are recorded")
        assert "Traceback" not in stderr
        with engine.connect() as c:  # cancelled on the server; the dead process's sessions end with it
            wait_for(lambda: sleeping_backends(c, run.run_id, sleeping=False) == [], what="the run's sessions gone")
        assert store.run(run.run_id).status == "interrupted"
        assert sorted(r.status for r in store.tasks(run.run_id)) == ["cancelled", "cancelled", "running", "running"]
        release_held_views(pg_db)
        resumed = cli("resume", "-c", str(cfg), cwd=tmp_path)
        assert resumed.returncode == 0, resumed.stderr
        assert "terminated" not in resumed.stderr  # nothing was left on the server
    finally:
        proc.kill()
        proc.wait()
        engine.dispose()
    assert result_sets(config, run.run_id) == {f"public.{v}": 1 for v in VIEWS}


def test_a_second_ctrl_c_stops_a_sequential_sqlite_query_mid_scan(tmp_path: Path) -> None:
    # Three million rows of four floats keep SQLite inside the Python stddev aggregate for seconds: a
    # KeyboardInterrupt raised there would be swallowed as a query error and the split retried.
    db = tmp_path / "big.db"
    with sqlite3.connect(db) as raw:
        raw.execute("CREATE TABLE big (x REAL, y REAL, z REAL, w REAL)")
        raw.execute("INSERT INTO big WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n "
                    "WHERE i < 3000000) SELECT i * 0.5, i * 0.25, -i, i % 7 FROM n")
        raw.execute("CREATE TABLE small (id INTEGER)")
    data = config_data(tmp_path, {"lite": {"type": "sqlite", "filepath": str(db)}}, [{"pattern": "*"}])
    data["profiling"]["metrics"] = ["count", "stddev"]
    proc, cfg, config, store, run = start_apply(tmp_path, data)
    try:
        wait_for(lambda: task_states(config, run.run_id).get("lite.main.big", ("",))[0] == "running",
                 what="big running")
        time.sleep(1.0)  # inside the scan (the plan starts the largest table first)
        proc.send_signal(signal.SIGINT)
        time.sleep(0.5)
        proc.send_signal(signal.SIGINT)
        _, stderr = proc.communicate(timeout=60)
    finally:
        proc.kill()
        proc.wait()
    assert proc.returncode == 130, stderr
    assert stderr.strip().splitlines()[-1].startswith("aborted; finished tasks are recorded"), stderr
    assert task_states(config, run.run_id) == {"lite.main.big": ("running", None), "lite.main.small": ("pending", None)}
    assert store.run(run.run_id).status == "interrupted"
    assert result_sets(config, run.run_id) == {}
    resume_completes(tmp_path, cfg, config, run.run_id, ["big", "small"], "main")
