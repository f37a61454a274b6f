"""The runner against the real PostgreSQL server: parallelism, caps, retries, permissions, secrets."""

from __future__ import annotations

import sqlite3
import threading
import time

from sqlalchemy import create_engine, text

from baselinr.quickstart import load_nycflights13
from baselinr.runner import RunStatus, TaskStatus, open_state
from baselinr.runner.failures import as_task_error
from baselinr.runner.resume import cancel_orphans
from baselinr.runner.state import TaskRow
from tests.test_crash_resume import wait_for
from tests.test_runner_fixtures import (
    Recorder, cli, compile_plan, config_data, make_config, make_slow_views, pg_exec, pg_url, result_sets, run_plan,
    stored_metrics, write_config,
)

VIEWS = [f"v{i}" for i in range(8)]


class ActivitySampler:
    """Counts this suite's runner backends busy on the server (pg_stat_activity), every 10 ms."""

    def __init__(self, conn: dict) -> None:
        self.engine = create_engine(pg_url(conn), isolation_level="AUTOCOMMIT")
        self.max_active = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop)

    def _loop(self) -> None:
        query = text("SELECT count(*) FROM pg_stat_activity WHERE application_name LIKE 'baselinr:%' "
                     "AND state = 'active'")
        with self.engine.connect() as c:
            while not self._stop.wait(0.01):
                self.max_active = max(self.max_active, c.execute(query).scalar())

    def __enter__(self) -> "ActivitySampler":
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.engine.dispose()


def max_overlap(rows: list[TaskRow]) -> int:
    """Most task intervals (from the state table) open at one instant."""
    edges = sorted([(r.started_at, 1) for r in rows] + [(r.finished_at, -1) for r in rows], key=lambda e: (e[0], e[1]))
    best = cur = 0
    for _, step in edges:
        cur += step
        best = max(best, cur)
    return best


def test_parallel_runs_concurrently_and_never_exceeds_the_cap(tmp_path, pg_db):
    make_slow_views(pg_db, VIEWS, 0.3)
    config = make_config(config_data(tmp_path, {"pg": pg_db}, [{"pattern": "v*"}],
                                     execution={"max_workers": 4, "warehouse_limits": {"pg": 3}}))
    plan = compile_plan(config)
    assert plan.warehouses["pg"].cap == 3
    rec = Recorder()
    with ActivitySampler(pg_db) as sampler:
        summary = run_plan(plan, config, rec)
    assert summary.status == RunStatus.SUCCEEDED
    rows = open_state(config).tasks(summary.run_id)
    assert rec.max_running["pg"] == 3  # the runner's own count, from its events
    assert 2 <= sampler.max_active <= 3  # what the server saw
    assert 2 <= max_overlap(rows) <= 3  # what the state table recorded
    assert all(r.backend_pid for r in rows)
    assert result_sets(config, summary.run_id) == {f"public.{v}": 1 for v in VIEWS}


def test_max_workers_and_cap_flags_raise_and_lower_a_default_plans_caps(tmp_path, pg_db):
    make_slow_views(pg_db, VIEWS, 0.3)
    config = make_config(config_data(tmp_path, {"pg": pg_db}, [{"pattern": "v*"}]))  # no execution: sequential
    plan = compile_plan(config)
    assert (plan.warehouses["pg"].cap, plan.warehouses["pg"].limit) == (1, 8)  # postgres' built-in limit is 8
    wide, capped = Recorder(), Recorder()
    raised = run_plan(plan, config, wide, max_workers=4)
    lowered = run_plan(plan, config, capped, max_workers=4, caps={"pg": 2})
    assert raised.status == lowered.status == RunStatus.SUCCEEDED
    assert (wide.max_running["pg"], capped.max_running["pg"]) == (4, 2)
    assert max_overlap(open_state(config).tasks(raised.run_id)) >= 2  # really concurrent, per the state table


def test_mixed_sqlite_cap_one_does_not_hold_back_postgres(tmp_path, pg_db):
    make_slow_views(pg_db, VIEWS, 0.2)
    lite = tmp_path / "lite.db"
    with sqlite3.connect(lite) as raw:
        for name in ("s1", "s2", "s3"):
            raw.execute(f"CREATE TABLE {name} AS WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n "
                        f"WHERE i < 20000) SELECT i, i * 0.5 AS x FROM n")
    config = make_config(config_data(
        tmp_path, {"lite": {"type": "sqlite", "filepath": str(lite)}, "pg": pg_db},
        [{"pattern": "s*", "source": "lite"}, {"pattern": "v*", "source": "pg"}],
        execution={"max_workers": 4, "warehouse_limits": {"pg": 3}}))
    plan = compile_plan(config)
    assert (plan.warehouses["lite"].cap, plan.warehouses["pg"].cap) == (1, 3)
    rec = Recorder()
    summary = run_plan(plan, config, rec)
    assert summary.status == RunStatus.SUCCEEDED
    assert rec.max_running["lite"] == 1 and rec.max_running["pg"] == 3
    assert rec.max_total == 4  # SQLite at its cap while PostgreSQL used every other worker
    assert len(result_sets(config, summary.run_id)) == 11


def test_fail_fast_in_parallel_lets_running_tasks_finish_and_cancels_the_rest(tmp_path, pg_db):
    make_slow_views(pg_db, VIEWS, 1.0)
    config = make_config(config_data(tmp_path, {"pg": pg_db}, [{"pattern": "v*"}],
                                     execution={"max_workers": 3, "warehouse_limits": {"pg": 3}}))
    plan = compile_plan(config)
    assert [t.table for t in plan.tasks] == VIEWS  # no size estimate for views: name order
    pg_exec(pg_db, "DROP VIEW v0")  # fails at once (stale) while v1 and v2 scan for a second
    summary = run_plan(plan, config, fail_fast=True)
    rows = {r.task_id.split(".")[-1]: (r.status, r.error_message) for r in open_state(config).tasks(summary.run_id)}
    assert rows.pop("v0") == (TaskStatus.FAILED, "stale plan: pg.public.v0 changed since the plan (table gone); "
                                                 "re-run baselinr plan")
    assert rows.pop("v1") == rows.pop("v2") == (TaskStatus.SUCCEEDED, None)  # running: let finish, not abandoned
    assert rows == {v: (TaskStatus.CANCELLED, "--fail-fast: stopped after pg.public.v0 failed") for v in VIEWS[3:]}
    assert summary.exit_code == 1 and sum(summary.counts.values()) == len(VIEWS)
    assert result_sets(config, summary.run_id) == {"public.v1": 1, "public.v2": 1}


def test_lost_connection_is_retried_and_succeeds(tmp_path, pg_db):
    make_slow_views(pg_db, ["slow"], 1.0)
    config = make_config(config_data(tmp_path, {"pg": pg_db}, [{"table": "slow"}]))
    plan = compile_plan(config)
    killed: list[int] = []

    def kill_first_backend() -> None:
        engine = create_engine(pg_url(pg_db), isolation_level="AUTOCOMMIT")
        with engine.connect() as c:
            deadline = time.monotonic() + 20
            while not killed and time.monotonic() < deadline:
                pid = c.execute(text("SELECT pid FROM pg_stat_activity WHERE application_name LIKE 'baselinr:%' "
                                     "AND state = 'active' AND query LIKE '%slow%'")).scalar()
                if pid:
                    c.execute(text("SELECT pg_terminate_backend(:p)"), {"p": pid})
                    killed.append(pid)
                time.sleep(0.02)
        engine.dispose()

    killer = threading.Thread(target=kill_first_backend)
    killer.start()
    rec = Recorder()
    summary = run_plan(plan, config, rec)
    killer.join()
    assert killed, "the test never saw the task's query"
    row = open_state(config).tasks(summary.run_id)[0]
    assert (summary.status, row.status, row.attempts) == (RunStatus.SUCCEEDED, TaskStatus.SUCCEEDED, 2)
    failed = rec.of("profiling_failed")
    assert [(f["attempt"], f["will_retry"]) for f in failed] == [(1, True)]


def test_permission_denied_is_permanent_and_not_retried(tmp_path, pg_db):
    pg_exec(pg_db, "CREATE TABLE open_t AS SELECT 1 AS id", "CREATE TABLE closed_t AS SELECT 1 AS id",
            "DROP ROLE IF EXISTS runner_reader", "CREATE ROLE runner_reader LOGIN",
            "GRANT SELECT ON open_t TO runner_reader")
    reader = {**pg_db, "username": "runner_reader"}
    config = make_config(config_data(tmp_path, {"pg": reader}, [{"pattern": "*_t"}]))
    summary = run_plan(compile_plan(config), config)
    rows = {r.task_id: r for r in open_state(config).tasks(summary.run_id)}
    closed, opened = rows["pg.public.closed_t"], rows["pg.public.open_t"]
    assert (closed.status, closed.attempts, closed.error_type) == (TaskStatus.FAILED, 1, "InsufficientPrivilege")
    assert closed.error_message == "permission denied for table closed_t"
    assert opened.status == TaskStatus.SUCCEEDED
    assert summary.exit_code == 1


def test_no_secret_reaches_plan_state_or_results(tmp_path, pg_db):
    secret = "pw-S3CRET-runner-zz"
    make_slow_views(pg_db, ["v0"], 0.0)
    config = make_config(config_data(tmp_path, {"pg": {**pg_db, "password": secret}}, [{"table": "v0"}]))
    summary = run_plan(compile_plan(config), config)
    assert summary.status == RunStatus.SUCCEEDED
    with sqlite3.connect(tmp_path / "store.db") as raw:
        dump = "\n".join(raw.iterdump())
    assert "v0" in dump and secret not in dump
    error = as_task_error(RuntimeError(f"could not connect to postgresql://u:{secret}@h/db password={secret}"),
                          [secret])
    assert secret not in str(error) and str(error).startswith("could not connect to postgresql://u:***@h/db")


def test_resume_terminates_a_dead_runners_queries_only(pg_db):
    run_id = "20260101T000000Z-deadbeef"
    engine = create_engine(pg_url(pg_db))
    errors: list[str] = []
    pids: dict[str, int] = {}
    ready = threading.Barrier(3, timeout=10)

    def sleeper(app: str) -> None:
        with engine.connect() as c:
            c.execute(text("SELECT set_config('application_name', :a, false)"), {"a": app})
            pids[app] = c.execute(text("SELECT pg_backend_pid()")).scalar()
            ready.wait()
            try:
                c.execute(text("SELECT pg_sleep(1.5)"))
            except Exception as exc:  # noqa: BLE001 - the terminated one is expected to fail
                errors.append(app + ": " + str(exc).splitlines()[0])

    apps = (f"baselinr:{run_id}", "someone-else")  # another client's session is left alone
    threads = [threading.Thread(target=sleeper, args=(a,)) for a in apps]
    for t in threads:
        t.start()
    ready.wait()
    # Both inside pg_sleep (autocommit: a transaction would see one snapshot of pg_stat_activity);
    # no pid of either was ever recorded in the state.
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as c:
        wait_for(lambda: c.execute(text("SELECT count(*) FROM pg_stat_activity WHERE wait_event = 'PgSleep' "
                                        "AND pid = ANY(:p)"), {"p": list(pids.values())}).scalar() == 2,
                 what="both sessions sleeping")
    killed = cancel_orphans(run_id, {"pg": engine})
    for t in threads:
        t.join()
    engine.dispose()
    assert killed == [pids[apps[0]]]
    assert errors == [f"{apps[0]}: (psycopg.errors.AdminShutdown) terminating connection due to administrator command"]


def test_plan_then_apply_on_nycflights13_sequential_and_parallel_and_profile(tmp_path, pg_db):
    load_nycflights13(create_engine(pg_url(pg_db)), tables=("airlines", "airports", "planes", "weather"))
    cfg = write_config(tmp_path, config_data(tmp_path, {"pg": pg_db}, [{"select_schema": True, "schema": "public"}]))
    plan = cli("plan", "-c", str(cfg), cwd=tmp_path)
    (tmp_path / "plan.json").write_text(plan.stdout)
    seq = cli("apply", "plan.json", "-c", str(cfg), cwd=tmp_path)
    par = cli("apply", "plan.json", "-c", str(cfg), "--max-workers", "4", cwd=tmp_path)
    both = cli("profile", "-c", str(cfg), "--max-workers", "2", cwd=tmp_path)
    assert (seq.returncode, par.returncode, both.returncode) == (0, 0, 0), seq.stderr + par.stderr + both.stderr
    assert "max_workers=1, caps: pg 1" in seq.stderr and "max_workers=4, caps: pg 4" in par.stderr
    assert "max_workers=2, caps: pg 2" in both.stderr
    config = make_config(config_data(tmp_path, {"pg": pg_db}, []))
    runs = [r.run_id for r in open_state(config).runs()][::-1]
    assert len(runs) == 3
    assert max_overlap(open_state(config).tasks(runs[1])) >= 2  # the --max-workers 4 run really overlapped
    first = stored_metrics(config, runs[0])
    assert stored_metrics(config, runs[1]) == first == stored_metrics(config, runs[2])
    weather = create_engine(pg_url(pg_db))
    with weather.connect() as c:
        n, nulls = c.execute(text("SELECT count(*), count(*) - count(wind_gust) FROM weather")).one()
    weather.dispose()
    assert (first[("weather", "wind_gust", "count")], first[("weather", "wind_gust", "null_count")]) == (
        str(n), str(nulls))
