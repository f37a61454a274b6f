"""Hand-built configs and catalogs shared by the planner tests (no tests here)."""

from __future__ import annotations

from typing import Any

from baselinr.config import BaselinrConfig, parse_config
from baselinr.connectors.catalog import Catalog, ColumnInfo, TableInfo

LITERAL_SECRETS = ("hunter2-literal-secret", "k-secret-123", "pw-default-secret", "tok-abc-999")

CATEGORY = {"INTEGER": "integer", "BIGINT": "integer", "FLOAT": "float", "NUMERIC(12, 2)": "decimal",
            "VARCHAR": "string", "TEXT": "string", "DATETIME": "temporal", "BOOLEAN": "boolean"}


def cols(*specs: str) -> tuple[ColumnInfo, ...]:
    """cols("id INTEGER", "name TEXT") -> ColumnInfo tuple."""
    out = []
    for spec in specs:
        name, type_ = spec.split(" ", 1)
        out.append(ColumnInfo(name=name, type=type_, category=CATEGORY[type_]))
    return tuple(out)


def table(warehouse: str, schema: str, name: str, columns: tuple[ColumnInfo, ...], rows: int | None = None,
          kind: str = "table") -> TableInfo:
    return TableInfo(warehouse=warehouse, schema=schema, name=name, kind=kind, columns=columns, estimated_rows=rows)


def multi_config(**overrides: Any) -> BaselinrConfig:
    """Three warehouses (sqlite, postgres, snowflake); patterns, excludes, dependencies, caps, literal secrets."""
    data: dict[str, Any] = {
        "environment": "ci",
        "sources": {
            "lake": {"type": "sqlite", "filepath": "data/lake.db"},
            "dwh": {"type": "postgres", "host": "${PLANNER_TEST_PGHOST:-db.internal}", "port": 5432,
                    "database": "analytics", "username": "baselinr", "password": "hunter2-literal-secret",
                    "schema": "public", "extra_params": {"sslmode": "require", "api_key": "k-secret-123"}},
            "snow": {"type": "snowflake", "host": "acct.eu", "database": "DB", "schema": "RAW", "username": "u",
                     "password": "${PLANNER_TEST_SNOW_PW:-pw-default-secret}"},
        },
        "storage": {"connection": {"type": "postgres", "host": "h", "password": "hunter2-literal-secret"}},
        "hooks": {"hooks": [{"type": "webhook", "url": "https://hooks.example/x",
                             "headers": {"Authorization": "Bearer tok-abc-999"}}]},
        "profiling": {
            "metrics": ["count", "null_count", "distinct_count", "min", "max", "mean"],
            "tables": [
                {"source": "lake", "table": "flights", "exclude_columns": ["time_*"], "depends_on": ["airlines"]},
                {"source": "lake", "pattern": "air*", "histogram_bins": 20},
                {"source": "lake", "select_schema": True, "schema": "main", "exclude_patterns": ["sqlite_*"]},
                {"source": "dwh", "pattern": "fact_.*", "pattern_type": "regex", "table_types": ["table"],
                 "columns": ["*_id", "amount"], "depends_on": ["public.dim_customer"]},
                {"source": "dwh", "table": "dim_customer", "metrics": ["count", "distinct_count"],
                 "compute_histograms": False},
                {"source": "dwh", "pattern": "tmp_*"},
                {"source": "snow", "select_schema": True, "schema": "RAW", "table_types": ["view"]},
            ],
        },
        "execution": {"max_workers": 4, "batch_size": 2, "warehouse_limits": {"dwh": 3, "snowflake": 2}},
    }
    data.update(overrides)
    return parse_config(data)


def multi_catalog() -> Catalog:
    """Tables for multi_config, listed in a deliberately unsorted order."""
    return Catalog(
        tables=[
            table("lake", "main", "weather", cols("origin TEXT", "temp FLOAT", "time_hour DATETIME"), 26115),
            table("lake", "main", "flights", cols("year INTEGER", "carrier TEXT", "dep_delay FLOAT",
                                                  "time_hour DATETIME"), 336776),
            table("lake", "main", "airlines", cols("carrier TEXT", "name TEXT"), 16),
            table("lake", "main", "airports", cols("faa TEXT", "name TEXT", "alt INTEGER"), 1458),
            table("lake", "main", "planes", cols("tailnum TEXT", "year INTEGER"), None),
            table("lake", "main", "sqlite_stat1", cols("tbl TEXT"), 3),
            table("dwh", "public", "fact_orders", cols("order_id BIGINT", "customer_id BIGINT",
                                                       "amount NUMERIC(12, 2)", "note TEXT"), 5_000_000),
            table("dwh", "public", "fact_returns", cols("return_id BIGINT", "order_id BIGINT", "reason TEXT"),
                  40_000),
            table("dwh", "public", "fact_daily", cols("day DATETIME", "amount NUMERIC(12, 2)"), 900,
                  kind="materialized_view"),
            table("dwh", "public", "dim_customer", cols("customer_id BIGINT", "name VARCHAR", "vip BOOLEAN"),
                  120_000),
            table("dwh", "public", "prefact_x", cols("id INTEGER"), 1),
            table("dwh", "staging", "fact_orders", cols("order_id BIGINT"), 10),
            table("snow", "RAW", "V_EVENTS", cols("ID BIGINT", "TS DATETIME"), None, kind="view"),
            table("snow", "RAW", "EVENTS", cols("ID BIGINT", "TS DATETIME"), 10**9),
        ],
        warehouse_types={"lake": "sqlite", "dwh": "postgres", "snow": "snowflake"},
    )


def single_config(tables: list[dict[str, Any]], **execution: Any) -> BaselinrConfig:
    """One sqlite warehouse named 'sqlite' with the given selections."""
    return parse_config({"source": {"type": "sqlite", "filepath": "w.db"},
                         "profiling": {"tables": tables}, "execution": execution})


def single_catalog(*names_rows: tuple[str, int | None]) -> Catalog:
    return Catalog(tables=[table("sqlite", "main", n, cols("id INTEGER", "name TEXT"), r) for n, r in names_rows],
                   warehouse_types={"sqlite": "sqlite"})
