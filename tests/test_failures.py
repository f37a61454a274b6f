"""Transient or permanent: real driver errors classified by ``is_transient`` (``as_task_error``)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.exc import DBAPIError

from baselinr.runner.failures import as_task_error


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
