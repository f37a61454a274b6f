"""Catalog reflection on real databases: objects that cannot be reflected are isolated, and a
SQLite schema is listed in one query, agreeing with SQLAlchemy's per-table reflection."""

from __future__ import annotations

import json
import sqlite3
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import pytest
import yaml
from click.testing import CliRunner
from sqlalchemy import event
from sqlalchemy.engine import Engine

import planner
from baselinr.cli import main
from baselinr.config import ConnectionConfig
from baselinr.connectors import create_engine, inspect_schema, inspect_table

BROKEN = "warehouse 'lake': view main.broken left out: cannot read its columns: no such table: main.gone"


def make_broken_sqlite(path: Path) -> None:
    """Tables a, b, a good view, and a view over a table that was then dropped."""
    with sqlite3.connect(path) as conn:
        conn.executescript("""
            CREATE TABLE a (id INTEGER NOT NULL, name TEXT);
            CREATE TABLE b (x REAL);
            CREATE TABLE gone (y INTEGER);
            CREATE VIEW broken AS SELECT y FROM gone;
            CREATE VIEW good AS SELECT id FROM a;
            DROP TABLE gone;
        """)
    conn.close()


def test_a_broken_sqlite_view_is_left_out_with_a_warning(sqlite_path: Path) -> None:
    make_broken_sqlite(sqlite_path)
    engine = create_engine(ConnectionConfig(type="sqlite", filepath=str(sqlite_path)))
    warnings: list[str] = []
    tables = inspect_schema(engine, "lake", "main", warnings)
    assert [(t.name, t.kind, [c.name for c in t.columns]) for t in tables] == [
        ("a", "table", ["id", "name"]), ("b", "table", ["x"]), ("good", "view", ["id"])]
    assert warnings == [BROKEN]


def test_plan_cli_plans_the_rest_of_a_schema_with_a_broken_view(tmp_path: Path, sqlite_path: Path) -> None:
    make_broken_sqlite(sqlite_path)
    config = tmp_path / "cfg.yml"
    config.write_text(yaml.safe_dump({"sources": {"lake": {"type": "sqlite", "filepath": str(sqlite_path)}},
                                      "profiling": {"tables": [{"select_schema": True, "schema": "main"}]}}))
    result = CliRunner().invoke(main, ["plan", "-c", str(config)], catch_exceptions=False)
    assert result.exit_code == 0, result.stderr
    plan = planner.load_plan(result.stdout)
    assert [t.id for t in plan.tasks] == ["lake.main.a", "lake.main.b", "lake.main.good"]
    assert list(plan.warnings) == [BROKEN] == json.loads(result.stdout)["warnings"]
    assert f"warning: {BROKEN}\n" in result.stderr


def test_naming_a_broken_view_explicitly_says_why_it_was_left_out(tmp_path: Path, sqlite_path: Path) -> None:
    make_broken_sqlite(sqlite_path)
    config = tmp_path / "cfg.yml"
    config.write_text(yaml.safe_dump({"sources": {"lake": {"type": "sqlite", "filepath": str(sqlite_path)}},
                                      "profiling": {"tables": [{"table": "broken"}]}}))
    result = CliRunner().invoke(main, ["plan", "-c", str(config)], catch_exceptions=False)
    assert result.exit_code == 2 and result.stdout == ""
    assert result.stderr == (f"warning: {BROKEN}\n"
                             f"error: {config}: profiling.tables[0]: table 'main.broken' not found in warehouse 'lake'\n")


@contextmanager
def statements(engine: Engine) -> Iterator[list[str]]:
    """The SQL statements the engine sends while the block runs."""
    sent: list[str] = []

    def record(_conn, _cursor, statement, *_args) -> None:
        sent.append(statement)

    event.listen(engine, "before_cursor_execute", record)
    try:
        yield sent
    finally:
        event.remove(engine, "before_cursor_execute", record)


def sqlite_engine(path: Path, ddl: str) -> Engine:
    with sqlite3.connect(path) as conn:
        conn.executescript(ddl)
    conn.close()
    return create_engine(ConnectionConfig(type="sqlite", filepath=str(path)))


@pytest.mark.parametrize("n", [3, 300])
def test_a_sqlite_schema_is_listed_in_one_statement(sqlite_path: Path, n: int) -> None:
    engine = sqlite_engine(sqlite_path, "".join(f"CREATE TABLE t{i:03d} (id INTEGER, v{i} TEXT);" for i in range(n))
                           + "CREATE VIEW v AS SELECT id FROM t000;")
    with statements(engine) as sent:
        tables = inspect_schema(engine, "lake", "main")
    assert len(sent) == 1, sent
    assert [t.name for t in tables] == [f"t{i:03d}" for i in range(n)] + ["v"]
    assert [c.name for c in tables[n - 1].columns] == ["id", f"v{n - 1}"]


VARIED = """
    CREATE TABLE "odd ""name"" é" (
        id INTEGER PRIMARY KEY, big BIGINT NOT NULL, i int, ubi UNSIGNED BIG INT, v VARCHAR(20), nv NVARCHAR(5),
        c CHAR, t TEXT NOT NULL, cl CLOB, n NUMERIC(10, 2), d DECIMAL, r REAL, dbl DOUBLE, dp DOUBLE PRECISION,
        f FLOAT, b BOOLEAN, dt DATE, dtt DATETIME, ts TIMESTAMP, tm TIME, bl BLOB, untyped, w "WEIRD TYPE"(3),
        j JSON, "sp ace" TEXT, g1 INTEGER GENERATED ALWAYS AS (id + 1) VIRTUAL,
        g2 TEXT GENERATED ALWAYS AS (t || 'x') STORED NOT NULL);
    CREATE TABLE wr (k TEXT PRIMARY KEY, val REAL) WITHOUT ROWID;
    CREATE TABLE st (a INT NOT NULL, b ANY, c BLOB) STRICT;
    CREATE VIRTUAL TABLE docs USING fts5(title, body);
    CREATE VIEW vw AS SELECT id, big * 2 AS twice, CAST(t AS VARCHAR(3)) AS short, n FROM "odd ""name"" é";
"""


def test_the_bulk_sqlite_listing_agrees_with_per_table_reflection(sqlite_path: Path) -> None:
    engine = sqlite_engine(sqlite_path, VARIED)
    with statements(engine) as sent:
        tables = inspect_schema(engine, "lake", "main")
    assert len(sent) == 1  # the bulk path
    names = [t.name for t in tables]
    shadow = [f"docs_{s}" for s in ("config", "content", "data", "docsize", "idx")]  # fts5's own tables
    assert names == sorted(['odd "name" é', "wr", "st", "docs", "vw", *shadow])
    for t in tables:  # inspect_table reflects one table with SQLAlchemy's get_columns (PRAGMA table_xinfo)
        assert t.columns == inspect_table(engine, "lake", "main", t.name).columns, t.name
    odd = {c.name: (c.type, c.category, c.nullable) for c in tables[names.index('odd "name" é')].columns}
    assert odd["big"] == ("BIGINT", "integer", False) and odd["n"] == ("NUMERIC(10, 2)", "decimal", True)
    assert odd["g2"] == ("TEXT", "string", False) and "untyped" in odd
    assert [c.name for c in tables[names.index("docs")].columns] == ["title", "body"]  # hidden columns skipped


def test_a_broken_view_falls_back_to_per_object_reflection(sqlite_path: Path) -> None:
    make_broken_sqlite(sqlite_path)
    engine = create_engine(ConnectionConfig(type="sqlite", filepath=str(sqlite_path)))
    with statements(engine) as sent:
        inspect_schema(engine, "lake", "main", [])
    assert "pragma_table_xinfo" in sent[0]  # the bulk query failed on the view, then each object once:
    assert [s for s in sent if s.startswith("PRAGMA")] == [f'PRAGMA main.table_xinfo("{name}")'
                                                          for name in ("a", "b", "broken", "good")]


def test_a_duckdb_plan_applies_and_a_changed_table_is_stale(tmp_path: Path) -> None:
    """The runner checks staleness through inspect_table on its own Connection (DuckDB failed every task)."""
    import duckdb

    db = tmp_path / "w.duckdb"
    with duckdb.connect(str(db)) as conn:
        conn.execute("CREATE TABLE t AS SELECT range AS x, range % 3 AS y FROM range(50)")
    config = tmp_path / "cfg.yml"
    config.write_text(yaml.safe_dump({"sources": {"duck": {"type": "duckdb", "filepath": str(db)}},
                                      "storage": {"connection": {"type": "sqlite", "filepath": str(tmp_path / "s.db")}},
                                      "profiling": {"tables": [{"table": "t"}]}}))
    plan = tmp_path / "plan.json"
    cli = CliRunner()
    assert cli.invoke(main, ["plan", "-c", str(config), "-o", str(plan)]).exit_code == 0
    engine = create_engine(ConnectionConfig(type="duckdb", filepath=str(db)))
    with engine.connect() as conn:
        assert inspect_table(conn, "duck", "main", "t").fingerprint == planner.load_plan(plan).tasks[0].fingerprint
        assert inspect_table(conn, "duck", "main", "gone") is None
    engine.dispose()
    applied = cli.invoke(main, ["apply", str(plan), "-c", str(config)])
    assert applied.exit_code == 0, applied.stderr
    with duckdb.connect(str(db)) as conn:
        conn.execute("ALTER TABLE t ADD COLUMN z INTEGER")
    stale = cli.invoke(main, ["apply", str(plan), "-c", str(config)])
    assert stale.exit_code == 1 and "stale plan: duck.main.t changed since the plan" in stale.stderr
