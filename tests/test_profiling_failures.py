"""Failure isolation, wide tables and concurrency of the profiling engine.

A column that breaks the fused select costs extra (bisected) selects but never the table;
a broken table or connection raises the database's own SQLAlchemy exception.
"""

from __future__ import annotations

import json
import math
import sqlite3
import statistics
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from sqlalchemy import Column, Integer, MetaData, Table, event, func, insert, select, text
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError, OperationalError

from baselinr.events import bus as ev

from baselinr.connectors.catalog import ColumnInfo, TableInfo
from baselinr.profiling import MAX_SELECT_ITEMS, profile_table
from baselinr.profiling.dialects import Flavor
from baselinr.runner import RunStatus, TaskStatus, open_state
from baselinr.storage import open_storage
from tests.test_profiling_fixtures import (
    BACKENDS, StatementCounter, assert_close, column, expected_histogram, make_engine, profile, reflect, schema_of,
    task_for,
)
from tests.test_runner_fixtures import Recorder, compile_plan, config_data, make_config, run_plan

# A view whose "bad" column raises at run time for one row, but only when it is evaluated.
FAILING_VIEW = {
    "sqlite": ("CREATE VIEW boom AS SELECT id, CASE WHEN id = 3 THEN abs(-9223372036854775807 - 1) ELSE id END "
               "AS bad FROM base", "integer overflow"),
    "postgresql": ("CREATE VIEW boom AS SELECT id, CASE WHEN id = 3 THEN 1 / (id - 3) ELSE id END AS bad FROM base",
                   "division by zero"),
    "duckdb": ("CREATE VIEW boom AS SELECT id, CASE WHEN id = 3 THEN CAST(error('boom') AS INTEGER) ELSE id END "
               "AS bad FROM base", "boom"),
}


@pytest.fixture(params=BACKENDS)
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Engine:
    return make_engine(request.param, request, tmp_path)


def create_ints(engine: Engine, name: str, columns: list[str], rows: list[list[int]]) -> None:
    table = Table(name, MetaData(), *(Column(c, Integer) for c in columns))
    table.create(engine)
    with engine.begin() as conn:
        conn.execute(insert(table), [dict(zip(columns, r)) for r in rows])


def test_a_failing_column_is_isolated_and_the_table_still_profiles(engine: Engine) -> None:
    ddl, message = FAILING_VIEW[engine.dialect.name]
    create_ints(engine, "base", ["id"], [[i] for i in range(1, 6)])
    with engine.begin() as conn:
        conn.execute(text(ddl))
    task = task_for(reflect(engine, "boom"))
    counter = StatementCounter(engine)
    with engine.connect() as conn:
        result = profile_table(conn, task)
        counter.close()
        assert conn.execute(select(1)).scalar() == 1  # the connection is still usable
    good = column(result, "id")
    assert (good["count"], good["min"], good["max"], good["distinct_count"]) == (5, 1, 5, 5)
    assert_close(good["stddev"], statistics.stdev(range(1, 6)))
    assert good["histogram"] == expected_histogram([1, 2, 3, 4, 5], 10)
    bad = next(c for c in result.columns if c.name == "bad")
    assert bad.metrics == {"count": 5}  # the row count does not read the column
    assert bad.errors and all(message in reason for reason in bad.errors.values()), bad.errors
    assert {"null_count", "distinct_count", "unique_ratio"} <= set(bad.errors)
    # The view's column is untyped on SQLite ("other": non-null and distinct counts), an integer
    # elsewhere (non-null, distinct, min, max, mean, stddev). Selects: the fused one, the probe,
    # each half split at the column boundary, the broken column's aggregates one by one, and
    # the histogram of "id".
    bad_aggregates = 2 if engine.dialect.name == "sqlite" else 6
    assert result.queries == counter.selects == 1 + 1 + 2 + bad_aggregates + 1


def test_fallback_on_an_autocommit_postgresql_connection(tmp_path: Path, request: pytest.FixtureRequest) -> None:
    engine = make_engine("postgresql", request, tmp_path)
    create_ints(engine, "base", ["id"], [[i] for i in range(1, 6)])
    with engine.begin() as conn:
        conn.execute(text(FAILING_VIEW["postgresql"][0]))
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        assert conn.connection.driver_connection.autocommit  # no transaction: SAVEPOINT would be refused
        result = profile_table(conn, task_for(reflect(engine, "boom")))
    assert column(result, "id")["max"] == 5 and "division by zero" in result.columns[1].errors["distinct_count"]


def test_a_missing_table_raises_the_database_error(engine: Engine) -> None:
    create_ints(engine, "gone", ["a", "b"], [[1, 2]])
    task = task_for(reflect(engine, "gone"))
    with engine.begin() as conn:
        conn.execute(text("DROP TABLE gone"))
    counter = StatementCounter(engine)
    with engine.connect() as conn, pytest.raises(DBAPIError):
        profile_table(conn, task)
    counter.close()
    assert counter.selects == 2  # the fused select and the probe: no bisection of a missing table


def test_a_lost_connection_raises_without_retrying_inside(pg_db: dict, tmp_path: Path,
                                                          request: pytest.FixtureRequest) -> None:
    engine = make_engine("postgresql", request, tmp_path)
    create_ints(engine, "t", ["a"], [[1], [2]])
    task = task_for(reflect(engine, "t"))
    with engine.connect() as conn:
        pid = conn.execute(select(func.pg_backend_pid())).scalar()
        conn.rollback()
        with engine.connect() as killer:
            killer.execute(select(func.pg_terminate_backend(pid)))
        with pytest.raises(OperationalError) as info:
            profile_table(conn, task)
    assert info.value.connection_invalidated


@pytest.mark.parametrize("engine", ["sqlite", "postgresql"], indirect=True)
def test_wide_tables_are_fused_in_bounded_chunks(engine: Engine) -> None:
    width = 700
    names = [f"c{k:03d}" for k in range(width)]
    create_ints(engine, "wide", names, [[k + r for k in range(width)] for r in range(3)])
    result, selects = profile(engine, "wide")
    # integer columns: non-null, distinct, min, max, mean, stddev; histograms: 9 inner edges each.
    aggregates, thresholds = 1 + width * 6, width * 9
    assert selects == result.queries == math.ceil(aggregates / MAX_SELECT_ITEMS) + math.ceil(thresholds / MAX_SELECT_ITEMS)
    assert selects > 2 and not any(c.errors for c in result.columns)
    for k, name in enumerate(names):
        metrics = column(result, name)
        assert (metrics["min"], metrics["max"], metrics["distinct_count"]) == (k, k + 2, 3), name
        assert metrics["histogram"] == expected_histogram([k, k + 1, k + 2], 10), name


@pytest.mark.parametrize("engine", ["sqlite", "postgresql"], indirect=True)
def test_concurrent_calls_on_their_own_connections_agree_with_python(engine: Engine) -> None:
    data = {f"t{i}": [[v * (i + 1), v % (i + 2)] for v in range(200 + i)] for i in range(4)}
    for name, rows in data.items():
        create_ints(engine, name, ["x", "y"], rows)
    tasks = {name: task_for(reflect(engine, name)) for name in data}

    def run(name: str):
        with engine.connect() as conn:
            return profile_table(conn, tasks[name])

    with ThreadPoolExecutor(max_workers=4) as pool:
        results = dict(zip(data, pool.map(run, list(data) * 3)))
    for name, rows in data.items():
        xs, ys = [r[0] for r in rows], [r[1] for r in rows]
        assert_close(column(results[name], "x")["stddev"], statistics.stdev(xs))
        assert column(results[name], "y")["distinct_count"] == len(set(ys))
        assert column(results[name], "x")["histogram"] == expected_histogram(xs, 10)


def test_columns_of_unknown_tables_in_other_schemas_are_quoted(engine: Engine) -> None:
    """A task built by hand (not reflected) for an explicit schema reads the same table."""
    create_ints(engine, "plain", ["v"], [[3], [4]])
    info = TableInfo(warehouse="wh", schema=schema_of(engine), name="plain",
                     columns=(ColumnInfo(name="v", type="INTEGER", category="integer"),))
    with engine.connect() as conn:
        result = profile_table(conn, task_for(info, metrics=("min", "max", "mean")))
    assert column(result, "v") == {"min": 3, "max": 4, "mean": 3.5}


@pytest.mark.parametrize("dialect, recovery", [
    ("sqlite", "none"), ("postgresql", "savepoint"), ("duckdb", "rollback"), ("mysql", "rollback"),
    ("snowflake", "rollback"), ("bigquery", "rollback"), ("redshift", "rollback")])
def test_only_postgresql_recovers_with_savepoints(dialect: str, recovery: str) -> None:
    # Snowflake, BigQuery and Redshift have no SAVEPOINT: a savepoint would fail every statement there.
    assert Flavor(dialect).recovery == recovery


def test_a_lock_between_scans_fails_the_table_and_the_retry_stores_it_whole(tmp_path: Path) -> None:
    """Another process's exclusive lock makes the histogram select fail with "database is locked"
    after the first scan succeeded: that is no per-metric failure. The table fails, the runner
    retries it once the lock is gone, and the run stores one complete result set."""
    db, values = tmp_path / "w.db", list(range(1, 21))
    with sqlite3.connect(db) as raw:
        raw.execute("CREATE TABLE readings (x INTEGER)")
        raw.executemany("INSERT INTO readings VALUES (?)", [(v,) for v in values])
    data = config_data(tmp_path, {"lite": {"type": "sqlite", "filepath": str(db), "busy_timeout": 0.05}},
                       [{"table": "readings"}])
    data["profiling"].update(metrics=["count", "min", "max", "mean", "histogram"], compute_histograms=True)
    config = make_config(data)
    locker = sqlite3.connect(db, timeout=0, isolation_level=None)
    scans: list[str] = []

    def lock_after_the_first_scan(conn, _cursor, statement: str, *_: object) -> None:
        if conn.engine.url.database != str(db):
            return
        if len(scans) == 1 and not locker.in_transaction:
            locker.execute("BEGIN EXCLUSIVE")  # once: the retry's scans run unhindered
        if "FROM readings" in statement:
            scans.append(statement)

    def release_on_failure(emitted: ev.BaseEvent) -> None:
        if emitted.event_type == ev.PROFILING_FAILED and locker.in_transaction:
            locker.rollback()

    recorder = Recorder()
    recorder.bus.register(release_on_failure)
    event.listen(Engine, "before_cursor_execute", lock_after_the_first_scan)
    try:
        summary = run_plan(compile_plan(config), config, recorder)
    finally:
        event.remove(Engine, "before_cursor_execute", lock_after_the_first_scan)
        locker.close()
    assert [(e["error"], e["attempt"], e["will_retry"]) for e in recorder.of(ev.PROFILING_FAILED)] == \
        [("database is locked", 1, True)]
    assert summary.status == RunStatus.SUCCEEDED
    [task] = open_state(config).tasks(summary.run_id)
    assert (task.status, task.attempts) == (TaskStatus.SUCCEEDED, 2)
    storage = open_storage(config.storage)
    res = storage.tables.results
    with storage.engine.connect() as conn:
        rows = conn.execute(select(res.c.metric_name, res.c.metric_value, res.c.error)
                            .where(res.c.run_id == summary.run_id)).all()
    assert [r for r in rows if r.error is not None] == []
    assert {r.metric_name: json.loads(r.metric_value) for r in rows} == {
        "count": 20, "min": 1, "max": 20, "mean": statistics.fmean(values),
        "histogram": expected_histogram(values, 10)}
