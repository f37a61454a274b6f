"""The runner end to end on real SQLite files: sequential default, failures, skips, resume, CLI."""

from __future__ import annotations

import json
import logging
import sqlite3
import statistics
import threading

import pytest
from sqlalchemy import create_engine

import baselinr.profiling.engine as engine_module
import baselinr.runner.runner as runner_module
from baselinr.profiling.engine import ProfileEngine
from baselinr.utils.worker_pool import WorkerPool, profile_table_task
from baselinr.quickstart import load_nycflights13
from baselinr.runner import RunStatus, TaskStatus, open_state, resume_run
from baselinr.runner.reporter import SilentReporter
from tests.test_runner_fixtures import (
    Recorder, cli, compile_plan, config_data, make_config, result_sets, run_plan, stored_metrics, write_config,
)

SMALL = ("airlines", "airports", "planes")


@pytest.fixture(scope="module")
def flights_db(tmp_path_factory):
    """The small nycflights13 tables in one SQLite file (read-only for the tests)."""
    path = tmp_path_factory.mktemp("nyc") / "nyc.db"
    engine = create_engine(f"sqlite:///{path}")
    load_nycflights13(engine, tables=SMALL)
    engine.dispose()
    return path


def nyc_data(tmp_path, db, **extra):
    return config_data(tmp_path, {"nyc": {"type": "sqlite", "filepath": str(db)}},
                       [{"select_schema": True, "schema": "main"}], **extra)


@pytest.fixture
def no_pool(monkeypatch):
    """Any WorkerPool built during the test fails it: the sequential path must create none."""
    def refuse(*_args, **_kwargs):
        raise AssertionError("a WorkerPool was created on the sequential path")
    monkeypatch.setattr(runner_module, "WorkerPool", refuse)
    monkeypatch.setattr(engine_module, "WorkerPool", refuse)


@pytest.mark.parametrize("execution", [None, {"max_workers": 1}], ids=["no execution section", "max_workers 1"])
def test_default_is_sequential_in_the_calling_thread_and_values_are_right(tmp_path, flights_db, no_pool, execution):
    data = nyc_data(tmp_path, flights_db)
    config = make_config({**data, "execution": execution} if execution else data)
    assert config.execution.max_workers == 1
    rec = Recorder()
    summary = run_plan(compile_plan(config), config, rec)
    assert summary.status == RunStatus.SUCCEEDED and summary.exit_code == 0
    assert rec.profiling_threads == {threading.get_ident()}  # no pool: every table profiled right here
    assert result_sets(config, summary.run_id) == {f"main.{t}": 1 for t in SMALL}
    with sqlite3.connect(flights_db) as raw:
        years = [r[0] for r in raw.execute("SELECT year FROM planes")]
        airlines = raw.execute("SELECT count(*) FROM airlines").fetchone()[0]
    metrics = stored_metrics(config, summary.run_id)
    assert json.loads(metrics[("airlines", "carrier", "count")]) == airlines == 16
    assert json.loads(metrics[("planes", "year", "null_count")]) == sum(y is None for y in years)
    present = [y for y in years if y is not None]
    assert float(metrics[("planes", "year", "mean")]) == pytest.approx(statistics.fmean(present))


def test_parallel_stores_the_same_results_as_sequential(tmp_path, flights_db):
    config = make_config(nyc_data(tmp_path, flights_db, execution={"max_workers": 4,
                                                                   "warehouse_limits": {"nyc": 3}}))
    plan = compile_plan(config)
    rec = Recorder()
    parallel = run_plan(plan, config, rec)
    sequential = run_plan(plan, config, max_workers=1)
    assert threading.get_ident() not in rec.profiling_threads
    assert parallel.status == sequential.status == RunStatus.SUCCEEDED
    assert stored_metrics(config, parallel.run_id) == stored_metrics(config, sequential.run_id)


def test_profile_engine_sequential_creates_no_pool(tmp_path, flights_db, no_pool):
    assert [r.table for r in ProfileEngine(make_config(nyc_data(tmp_path, flights_db))).profile()] == list(SMALL)


def test_profile_table_task_returns_none_for_a_failed_table_and_the_others_still_profile(tmp_path, chain_db):
    config = make_config(chain_data(tmp_path, chain_db))
    plan = compile_plan(config)
    with sqlite3.connect(chain_db) as raw:
        raw.execute("DROP TABLE b")
    engine = create_engine(f"sqlite:///{chain_db}")
    records: list[logging.LogRecord] = []
    handler = logging.Handler(logging.WARNING)  # on the logger itself: CLI tests may have reconfigured propagation
    handler.emit = records.append  # type: ignore[method-assign]
    logger = logging.getLogger("baselinr.worker_pool")
    logger.addHandler(handler)
    try:
        in_thread = [profile_table_task(engine, task) for task in plan.tasks]
        with WorkerPool(2) as pool:
            pooled = pool.wait_for_completion([pool.submit(profile_table_task, engine, t) for t in plan.tasks])
    finally:
        logger.removeHandler(handler)
        engine.dispose()
    for results in (in_thread, pooled):
        by_table = {t.table: r for t, r in zip(plan.tasks, results)}
        assert {t: (r.table, r.row_count) if r else None for t, r in by_table.items()} == {
            "a": ("a", 5), "b": None, "c": ("c", 5), "d": ("d", 5)}
    failures = [r.getMessage() for r in records]
    assert failures == ["profiling lite.main.b failed: stale plan: lite.main.b changed since the plan (table gone); "
                        "re-run baselinr plan"] * 2


def test_profile_engine_routes_sequential_and_parallel_to_equal_results(tmp_path, flights_db):
    data = nyc_data(tmp_path, flights_db)
    one = make_config(data)
    many = make_config({**data, "execution": {"max_workers": 3}})
    rec_one, rec_many = Recorder(), Recorder()
    seq = ProfileEngine(one, event_bus=rec_one.bus).profile()
    par = ProfileEngine(many, event_bus=rec_many.bus).profile()
    assert rec_one.profiling_threads == {threading.get_ident()}
    assert threading.get_ident() not in rec_many.profiling_threads
    strip = lambda rs: [(r.table, r.row_count, [c.metrics for c in r.columns]) for r in rs]  # noqa: E731
    assert strip(seq) == strip(par) and [r.table for r in seq] == list(SMALL)


@pytest.fixture
def chain_db(tmp_path):
    """a <- b <- c (dependencies) and an independent d."""
    path = tmp_path / "chain.db"
    with sqlite3.connect(path) as raw:
        for name in "abcd":
            raw.execute(f"CREATE TABLE {name} (id INTEGER, v TEXT)")
            raw.executemany(f"INSERT INTO {name} VALUES (?, ?)", [(i, f"v{i}") for i in range(5)])
    return path


def chain_data(tmp_path, db, **extra):
    tables = [{"table": "a"}, {"table": "b", "depends_on": ["a"]}, {"table": "c", "depends_on": ["b"]},
              {"table": "d"}]
    return config_data(tmp_path, {"lite": {"type": "sqlite", "filepath": str(db)}}, tables, **extra)


def statuses(config, run_id):
    return {r.task_id.split(".")[-1]: (r.status, r.error_message) for r in open_state(config).tasks(run_id)}


def test_failure_is_isolated_dependents_skipped_and_resume_finishes(tmp_path, chain_db):
    config = make_config(chain_data(tmp_path, chain_db))
    plan = compile_plan(config)
    with sqlite3.connect(chain_db) as raw:
        raw.execute("DROP TABLE a")
    first = Recorder()
    summary = run_plan(plan, config, first)
    assert summary.exit_code == 1 and summary.status == RunStatus.FAILED
    # a and d share batch L0; the batches of b (L1) and c (L2) never start, so they report nothing.
    assert [m["batch_id"] for m in first.of("batch_started")] == ["lite.L0.b1"]
    assert [{k: m[k] for k in ("batch_id", "successful", "failed", "skipped", "cancelled")}
            for m in first.of("batch_completed")] == [
        {"batch_id": "lite.L0.b1", "successful": 1, "failed": 1, "skipped": 0, "cancelled": 0}]
    st = statuses(config, summary.run_id)
    assert st["a"][0] == TaskStatus.FAILED
    assert st["a"][1] == "stale plan: lite.main.a changed since the plan (table gone); re-run baselinr plan"
    assert st["b"] == (TaskStatus.SKIPPED, "upstream lite.main.a failed")
    assert st["c"] == (TaskStatus.SKIPPED, "upstream lite.main.a failed")
    assert st["d"][0] == TaskStatus.SUCCEEDED
    assert summary.counts == {TaskStatus.FAILED: 1, TaskStatus.SKIPPED: 2, TaskStatus.SUCCEEDED: 1}
    assert sum(summary.counts.values()) == len(plan.tasks)
    d_before = {r.task_id: r for r in open_state(config).tasks(summary.run_id)}["lite.main.d"]

    with sqlite3.connect(chain_db) as raw:  # fix the warehouse, then resume: only a, b, c run
        raw.execute("CREATE TABLE a (id INTEGER, v TEXT)")
    rec = Recorder()
    resumed = resume_run(None, config, reporter=SilentReporter(), event_bus=rec.bus)
    assert resumed.run_id == summary.run_id and resumed.exit_code == 0
    assert [m["table"] for m in rec.of("worker_started")] == ["lite.main.a", "lite.main.b", "lite.main.c"]
    d_after = {r.task_id: r for r in open_state(config).tasks(summary.run_id)}["lite.main.d"]
    assert (d_after.attempts, d_after.started_at) == (d_before.attempts, d_before.started_at)
    assert result_sets(config, summary.run_id) == {"main.a": 1, "main.b": 1, "main.c": 1, "main.d": 1}
    assert resume_run(None, config, reporter=SilentReporter()) is None  # nothing left


def test_resume_reports_tables_changed_since_the_plan_as_stale_before_running(tmp_path, chain_db):
    cfg = write_config(tmp_path, chain_data(tmp_path, chain_db))
    (tmp_path / "plan.json").write_text(cli("plan", "-c", str(cfg), cwd=tmp_path).stdout)
    with sqlite3.connect(chain_db) as raw:
        raw.execute("DROP TABLE a")  # a fails; b and c are skipped
    applied = cli("apply", "plan.json", "-c", str(cfg), cwd=tmp_path)
    assert applied.returncode == 1
    assert ("1 task(s) failed because their table changed since the plan: resume would fail them again; re-run "
            "`baselinr plan`, review the change and apply the new plan\n") in applied.stderr
    with sqlite3.connect(chain_db) as raw:  # a is back as planned; b, never run, changed meanwhile
        raw.execute("CREATE TABLE a (id INTEGER, v TEXT)")
        raw.execute("ALTER TABLE b RENAME COLUMN v TO w")
    result = cli("resume", "-c", str(cfg), cwd=tmp_path)
    explained = result.stderr.split("resuming run ", 1)[1].splitlines()[1:4]
    assert explained == ["  lite.main.a: was stale: table gone; matches the plan again",
                         "  lite.main.b: stale: column v dropped",
                         "  lite.main.c: skipped: upstream lite.main.a failed"]
    assert result.returncode == 1  # b fails as stale when it runs, so c is skipped again


def test_a_config_naming_another_database_than_the_plan_is_refused(tmp_path, chain_db, monkeypatch):
    monkeypatch.delenv("CHAIN_DB", raising=False)
    planned = chain_data(tmp_path, chain_db)
    planned["sources"]["lite"]["filepath"] = f"${{CHAIN_DB:-{chain_db}}}"
    (tmp_path / "plan.json").write_text(cli("plan", "-c", str(write_config(tmp_path, planned)), cwd=tmp_path).stdout)
    copy = tmp_path / "copy.db"
    copy.write_bytes(chain_db.read_bytes())
    elsewhere = write_config(tmp_path, chain_data(tmp_path, copy), name="elsewhere.yml")
    refused = cli("apply", "plan.json", "-c", str(elsewhere), cwd=tmp_path)
    assert (refused.returncode, refused.stdout) == (2, "")
    assert refused.stderr == (
        f"error: warehouse 'lite': the config's filepath ({str(copy)!r}) is not the plan's "
        f"('${{CHAIN_DB:-{chain_db}}}'); apply with the config the plan was compiled from, or re-run baselinr "
        "plan with this one\n")
    assert open_state(make_config(planned)).runs() == []  # refused before anything was recorded
    literal = write_config(tmp_path, chain_data(tmp_path, chain_db), name="literal.yml")  # the same file, spelled out
    assert cli("apply", "plan.json", "-c", str(literal), cwd=tmp_path).returncode == 0


def test_changed_columns_fail_as_stale_and_resume_explains(tmp_path, chain_db, capsys):
    config = make_config(chain_data(tmp_path, chain_db))
    plan = compile_plan(config)
    with sqlite3.connect(chain_db) as raw:
        raw.execute("ALTER TABLE d ADD COLUMN extra REAL")
    summary = run_plan(plan, config)
    assert statuses(config, summary.run_id)["d"] == (
        TaskStatus.FAILED, "stale plan: lite.main.d changed since the plan (columns added or changed); "
                           "re-run baselinr plan")
    result = cli("resume", "-c", str(write_config(tmp_path, chain_data(tmp_path, chain_db))), cwd=tmp_path)
    assert result.returncode == 1
    assert f"resuming run {summary.run_id}: 1 task(s) to run\n  lite.main.d: stale: columns added or changed" \
        in result.stderr
    assert result.stdout == ""


def test_fail_fast_cancels_what_did_not_start(tmp_path, chain_db):
    config = make_config(chain_data(tmp_path, chain_db))
    plan = compile_plan(config)
    with sqlite3.connect(chain_db) as raw:
        raw.execute("DROP TABLE a")
    summary = run_plan(plan, config, fail_fast=True)
    st = statuses(config, summary.run_id)
    assert st["a"][0] == TaskStatus.FAILED
    assert st["b"] == st["c"] == (TaskStatus.SKIPPED, "upstream lite.main.a failed")
    assert st["d"] == (TaskStatus.CANCELLED, "--fail-fast: stopped after lite.main.a failed")
    assert summary.exit_code == 1 and sum(summary.counts.values()) == 4


def test_cli_apply_status_resume_exit_codes(tmp_path, chain_db):
    cfg = write_config(tmp_path, chain_data(tmp_path, chain_db))
    plan = cli("plan", "-c", str(cfg), cwd=tmp_path)
    (tmp_path / "plan.json").write_text(plan.stdout)
    ok = cli("apply", "plan.json", "-c", str(cfg), cwd=tmp_path)
    assert ok.returncode == 0, ok.stderr
    assert ok.stdout == "" and "succeeded       4" in ok.stderr
    runs = json.loads(cli("status", "--json", "-c", str(cfg), cwd=tmp_path).stdout)
    assert [r["tasks"] for r in runs] == [{"succeeded": 4}]
    one = json.loads(cli("status", runs[0]["run_id"], "--json", "-c", str(cfg), cwd=tmp_path).stdout)
    assert [(t["task_id"], t["status"], t["attempts"]) for t in one["tasks"]] == [
        (f"lite.main.{t}", "succeeded", 1) for t in "adbc"]  # plan order: dependency level, then name
    nothing = cli("resume", "-c", str(cfg), cwd=tmp_path)
    assert (nothing.returncode, nothing.stderr.strip()) == (0, "nothing to resume: no unfinished run")

    (tmp_path / "bad.json").write_text(plan.stdout.replace('"table": "a"', '"table": "zz"', 1))
    bad = cli("apply", "bad.json", "-c", str(cfg), cwd=tmp_path)
    assert bad.returncode == 2 and bad.stderr.startswith("error: ") and "Traceback" not in bad.stderr
    unknown = cli("status", "nope", "-c", str(cfg), cwd=tmp_path)
    assert unknown.returncode == 2 and "unknown run id 'nope'" in unknown.stderr


def test_without_config_uses_default_storage_and_env_references(tmp_path, chain_db):
    data = chain_data(tmp_path, chain_db)
    data["sources"]["lite"]["filepath"] = "${CHAIN_DB_PATH}"
    del data["storage"]
    cfg = write_config(tmp_path, data)
    env = {"CHAIN_DB_PATH": str(chain_db)}
    plan = cli("plan", "-c", str(cfg), cwd=tmp_path, env=env)
    assert "${CHAIN_DB_PATH}" in plan.stdout and str(chain_db) not in plan.stdout
    (tmp_path / "plan.json").write_text(plan.stdout)
    applied = cli("apply", "plan.json", cwd=tmp_path, env=env)
    assert applied.returncode == 0, applied.stderr
    assert (tmp_path / ".baselinr" / "baselinr.db").exists()
    missing = cli("apply", "plan.json", cwd=tmp_path)  # CHAIN_DB_PATH not set
    assert (missing.returncode, missing.stderr) == (2, "error: plan connections: sources.lite.filepath: environment "
                                                       "variable CHAIN_DB_PATH is not set (export it, or write "
                                                       "${CHAIN_DB_PATH:-default})\n")


@pytest.mark.parametrize("command", [["resume"], ["status"], ["status", "--json"], ["status", "some-run"]])
def test_resume_and_status_where_nothing_ever_ran_say_so_and_create_no_database(tmp_path, command):
    result = cli(*command, cwd=tmp_path)
    assert (result.returncode, result.stdout) == (2, "")
    assert result.stderr == ("error: no runs recorded: the storage database .baselinr/baselinr.db does not exist "
                             "(nothing was applied with this storage; pass -c with the config the runs used)\n")
    assert list(tmp_path.iterdir()) == []
