"""Transient or permanent: real driver errors classified by ``is_transient`` (``as_task_error``)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from typing import Iterator

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.exc import DBAPIError

from baselinr.runner import TaskStatus, open_state
from baselinr.runner.failures import as_task_error
from tests.test_crash_resume import wait_for
from tests.test_runner_fixtures import compile_plan, config_data, make_config, pg_exec, pg_url, run_plan


def sqlite_error(path: Path, statement: str, setup=None) -> DBAPIError:
    """The SQLAlchemy error a statement raises on a real SQLite file."""
    engine = create_engine(f"sqlite:///{path}", connect_args={"timeout": 0})
    try:
        with engine.connect() as conn:
            if setup is not None:
                setup(conn.connection.driver_connection)
            with pytest.raises(DBAPIError) as info:
                conn.execute(text(statement))
    finally:
        engine.dispose()
    return info.value


def test_sqlite_locks_and_interrupts_are_transient_column_and_table_errors_permanent(tmp_path: Path) -> None:
    db = tmp_path / "w.db"
    with sqlite3.connect(db) as raw:
        raw.execute("CREATE TABLE t (x INTEGER)")
        raw.executemany("INSERT INTO t VALUES (?)", [(2**62,), (2**62,)])
    locker = sqlite3.connect(db, isolation_level=None)
    locker.execute("BEGIN EXCLUSIVE")
    try:
        locked = as_task_error(sqlite_error(db, "SELECT count(*) FROM t"))
    finally:
        locker.close()
    interrupted = as_task_error(sqlite_error(db, "SELECT count(*) FROM t a, t b",
                                             lambda raw: raw.set_progress_handler(lambda: 1, 1)))
    overflow = as_task_error(sqlite_error(db, "SELECT sum(x) FROM t"))
    missing = as_task_error(sqlite_error(db, "SELECT count(*) FROM gone"))
    assert [(str(e), e.transient) for e in (locked, interrupted, overflow, missing)] == [
        ("database is locked", True), ("interrupted", True), ("integer overflow", False),
        ("no such table: gone", False)]


ROLE = "baselinr_pw_user"


@pytest.fixture
def password_role(pg_server, pg_db: dict) -> Iterator[dict]:
    """A role the test server checks with scram-sha-256 (a pg_hba.conf line for it alone; every other
    role keeps trust), allowed to read ``t`` (1, 2, 3) in a fresh database: its connection, password 'pw-1'."""
    admin, hba = pg_server.connection(), Path(pg_server.datadir) / "pg_hba.conf"
    original = hba.read_text()
    pg_exec(admin, f"DROP ROLE IF EXISTS {ROLE}", f"CREATE ROLE {ROLE} LOGIN PASSWORD 'pw-1'")
    hba.write_text(f"host all {ROLE} 127.0.0.1/32 scram-sha-256\n{original}")
    pg_exec(admin, "SELECT pg_reload_conf()")
    pg_exec(pg_db, "CREATE TABLE t AS SELECT generate_series(1, 3) AS x", f"GRANT SELECT ON t TO {ROLE}")
    connection = {**pg_db, "username": ROLE}
    wait_for(lambda: "no password supplied" in str(connect_error(connection)), what="pg_hba.conf reloaded")
    try:
        yield {**connection, "password": "pw-1"}
    finally:
        hba.write_text(original)
        pg_exec(admin, "SELECT pg_reload_conf()")
        pg_exec(pg_db, f"DROP OWNED BY {ROLE}")
        pg_exec(admin, f"DROP ROLE {ROLE}")


def connect_error(connection: dict) -> DBAPIError:
    """The error connecting with a connection mapping (no password) raises; fails the test if it connects."""
    engine = create_engine(pg_url(connection))
    try:
        with pytest.raises(DBAPIError) as info, engine.connect():
            pass
    finally:
        engine.dispose()
    return info.value


def test_a_rotated_password_fails_the_table_at_once_instead_of_after_three_attempts(
        tmp_path: Path, pg_server, password_role: dict) -> None:
    config = make_config(config_data(tmp_path, {"pg": password_role}, [{"table": "t"}]))
    assert config.retry.retries == 2
    plan = compile_plan(config)
    pg_exec(pg_server.connection(), f"ALTER ROLE {ROLE} PASSWORD 'pw-2'")
    summary = run_plan(plan, config)
    [task] = open_state(config).tasks(summary.run_id)
    assert (task.status, task.attempts) == (TaskStatus.FAILED, 1)
    assert f'FATAL:  password authentication failed for user "{ROLE}"' in task.error_message
    assert "pw-1" not in task.error_message


@pytest.mark.parametrize("who, expected", [
    ({"username": "no_such_role"}, 'FATAL:  role "no_such_role" does not exist'),
    ({"database": "no_such_db"}, 'FATAL:  database "no_such_db" does not exist'),
])
def test_an_unknown_role_or_database_is_permanent(pg_server, who: dict, expected: str) -> None:
    error = as_task_error(connect_error({**pg_server.connection(), **who}))
    assert expected in str(error) and not error.transient
