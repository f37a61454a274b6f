"""Engine factory and catalog reflection against real SQLite, DuckDB and PostgreSQL databases."""

from __future__ import annotations

import pytest
from sqlalchemy import create_engine as sa_create_engine, func, select, table, text
from sqlalchemy.dialects import postgresql

from baselinr.config import ConnectionConfig, ExecutionConfig
from baselinr.connectors import create_engine, inspect_schema, inspect_table, safe_url
from baselinr.connectors.catalog import categorize
from baselinr.connectors.factory import pool_settings
from baselinr.errors import WarehouseConnectionError

SERVER = {"host": "acct", "database": "db", "username": "u", "password": "pw", "schema": "s"}


@pytest.mark.parametrize("type_, url", [
    ("postgres", "postgresql+psycopg://u:***@acct/db"),
    ("mysql", "mysql+pymysql://u:***@acct/db"),
    ("snowflake", "snowflake://u:***@acct/db/s"),
    ("redshift", "redshift+redshift_connector://u:***@acct/db"),
    ("bigquery", "bigquery://db/s"),
])
def test_urls_mask_the_password(type_, url):
    assert safe_url(ConnectionConfig(type=type_, **SERVER)) == url


@pytest.mark.parametrize("type_", ["mysql", "snowflake", "bigquery", "redshift"])
def test_missing_driver_names_the_extra(type_):
    with pytest.raises(WarehouseConnectionError, match=rf"the {type_} driver is not installed: "
                                                      rf"pip install 'baselinr\[{type_}\]'"):
        create_engine(ConnectionConfig(type=type_, **SERVER))


def test_pool_sizing_follows_max_workers():
    assert pool_settings("postgres", ExecutionConfig()) == {"pool_size": 5, "max_overflow": 10}
    assert pool_settings("postgres", ExecutionConfig(max_workers=4)) == {"pool_size": 6, "max_overflow": 4}
    engine = create_engine(ConnectionConfig(type="postgres", host="h"), ExecutionConfig(max_workers=8))
    assert (engine.pool.size(), engine.pool._max_overflow, engine.pool._pre_ping) == (10, 8, True)


def test_types_are_categorised_by_class_not_name():
    assert categorize(postgresql.INTERVAL()) == "other"
    assert categorize(postgresql.BIGINT()) == "integer"
    assert categorize(postgresql.DOUBLE_PRECISION()) == "float"
    assert categorize(postgresql.NUMERIC(38, 10)) == "decimal"
    assert categorize(postgresql.BOOLEAN()) == "boolean"
    assert categorize(postgresql.ENUM("a", name="e")) == "string"
    assert categorize(postgresql.TIMESTAMP(timezone=True)) == "temporal"
    assert categorize(postgresql.BYTEA()) == "binary"
    assert categorize(postgresql.JSONB()) == "other"
    assert categorize(postgresql.UUID()) == "other"


def test_sqlite_catalog_lists_tables_and_views(sqlite_path):
    raw = sa_create_engine(f"sqlite:///{sqlite_path}")
    with raw.begin() as conn:
        conn.execute(text('CREATE TABLE "odd ""name""" (id INTEGER NOT NULL, label TEXT, amount NUMERIC(10, 2))'))
        conn.execute(text('CREATE VIEW v AS SELECT id FROM "odd ""name"""'))
    engine = create_engine(ConnectionConfig(type="sqlite", filepath=str(sqlite_path)))
    tables = inspect_schema(engine, "lake", "main")
    assert [(t.name, t.kind) for t in tables] == [('odd "name"', "table"), ("v", "view")]
    odd = tables[0]
    assert [(c.name, c.type, c.category, c.nullable) for c in odd.columns] == [
        ("id", "INTEGER", "integer", False), ("label", "TEXT", "string", True),
        ("amount", "NUMERIC(10, 2)", "decimal", True)]
    assert inspect_table(engine, "lake", "main", 'odd "name"').fingerprint == odd.fingerprint
    assert inspect_table(engine, "lake", "main", "gone") is None


def test_postgres_catalog_with_views_and_estimates(pg_db):
    engine = create_engine(ConnectionConfig(**pg_db))
    with engine.begin() as conn:
        conn.execute(text("CREATE SCHEMA sales"))
        conn.execute(text("CREATE TABLE sales.orders (id bigint, amount numeric(12,2), at timestamptz, d interval)"))
        conn.execute(text("INSERT INTO sales.orders SELECT g, g, now(), '1 day' FROM generate_series(1, 500) g"))
        conn.execute(text("CREATE VIEW sales.big_orders AS SELECT * FROM sales.orders WHERE amount > 100"))
        conn.execute(text("CREATE MATERIALIZED VIEW sales.totals AS SELECT sum(amount) AS total FROM sales.orders"))
        conn.execute(text("ANALYZE sales.orders"))
    tables = {t.name: t for t in inspect_schema(engine, "dwh", "sales")}
    assert {n: t.kind for n, t in tables.items()} == {"big_orders": "view", "orders": "table",
                                                      "totals": "materialized_view"}
    assert tables["orders"].estimated_rows == 500
    assert [(c.name, c.category) for c in tables["orders"].columns] == [
        ("id", "integer"), ("amount", "decimal"), ("at", "temporal"), ("d", "other")]


def test_duckdb_catalog(tmp_path):
    engine = create_engine(ConnectionConfig(type="duckdb", filepath=str(tmp_path / "w.duckdb")))
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE t (x DOUBLE, s VARCHAR)"))
    (table,) = inspect_schema(engine, "duck", "main")
    assert [(c.name, c.type, c.category) for c in table.columns] == [("x", "DOUBLE", "float"), ("s", "VARCHAR", "string")]
    assert table.estimated_rows == 0


def test_duckdb_estimates_are_its_stored_row_counts(tmp_path):
    path = tmp_path / "w.duckdb"
    engine = create_engine(ConnectionConfig(type="duckdb", filepath=str(path)))
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE big AS SELECT range AS id FROM range(123457)"))
        conn.execute(text("CREATE TABLE small (id INTEGER)"))
        conn.execute(text("INSERT INTO small VALUES (1), (2), (3)"))
        conn.execute(text("CREATE SCHEMA other"))
        conn.execute(text("CREATE TABLE other.big AS SELECT range AS id FROM range(10)"))
        conn.execute(text("CREATE VIEW v AS SELECT * FROM big"))
    engine.dispose()
    engine = create_engine(ConnectionConfig(type="duckdb", filepath=str(path)))  # as persisted in the file
    with engine.connect() as conn:
        counts = {name: conn.execute(select(func.count()).select_from(table(name))).scalar_one()
                  for name in ("big", "small")}
    assert counts == {"big": 123457, "small": 3}
    assert {t.name: t.estimated_rows for t in inspect_schema(engine, "duck", "main")} == {**counts, "v": None}
    assert {t.name: t.estimated_rows for t in inspect_schema(engine, "duck", "other")} == {"big": 10}


def test_unreachable_server_is_a_one_line_error():
    from tests.pgserver import free_port

    engine = create_engine(ConnectionConfig(type="postgres", host="127.0.0.1", port=free_port(),
                                            username="u", password="hunter2"))
    with pytest.raises(WarehouseConnectionError) as info:
        inspect_schema(engine, "dwh", "public")
    message = str(info.value)
    assert message.startswith("warehouse 'dwh': cannot list schema 'public': ")
    assert "hunter2" not in message and "\n" not in message
