"""Edge cases on small generated tables, the same cases on SQLite, PostgreSQL and DuckDB.

Expected values are computed here from the Python data (``statistics``, by hand).
"""

from __future__ import annotations

import math
import statistics
from datetime import date, datetime, time, timedelta, timezone
from decimal import Decimal
from fractions import Fraction
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import (
    BigInteger, Boolean, Column, Date, DateTime, Double, Float, Integer, LargeBinary, MetaData, Numeric, SmallInteger,
    String, Table, Text, Time, cast, insert, literal,
)
from sqlalchemy.engine import Engine

from baselinr.profiling import ProfilingResult
from baselinr.profiling.aggregates import BASE_METRICS
from baselinr.storage import encode_metric
from tests.test_profiling_fixtures import BACKENDS, assert_close, column, expected_histogram, make_engine, profile

NUMERIC_NONE = {"min": None, "max": None, "mean": None, "stddev": None, "histogram": None}


@pytest.fixture(params=BACKENDS)
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Engine:
    return make_engine(request.param, request, tmp_path)


def create(engine: Engine, name: str, columns: list[Column], rows: list[dict[str, Any]]) -> None:
    table = Table(name, MetaData(), *columns)
    table.create(engine)
    if rows:
        with engine.begin() as conn:
            conn.execute(insert(table), rows)


def assert_json_safe(result: ProfilingResult) -> None:
    for col in result.columns:
        for name, value in col.metrics.items():
            encode_metric(value)  # raises on NaN/Infinity or unsupported values
            if isinstance(value, datetime):
                assert value.utcoffset() == timedelta(0), (col.name, name)


def test_empty_table_gives_null_ratios_and_no_statistics(engine: Engine) -> None:
    create(engine, "empty", [Column("n", Integer), Column("x", Float), Column("s", String(20))], [])
    result, selects = profile(engine, "empty")
    assert result.row_count == 0
    assert column(result, "n") == {"count": 0, "null_count": 0, "null_ratio": None, "distinct_count": 0,
                                   "unique_ratio": None, **NUMERIC_NONE}
    assert column(result, "x") == {"count": 0, "null_count": 0, "null_ratio": None, "distinct_count": 0,
                                   "unique_ratio": None, **NUMERIC_NONE, "nan_count": 0, "inf_count": 0}
    assert column(result, "s")["min_length"] is None and column(result, "s")["avg_length"] is None
    assert selects == result.queries == 1  # nothing to bin: no histogram query
    assert_json_safe(result)


def test_all_null_column_and_single_row(engine: Engine) -> None:
    create(engine, "nulls", [Column("n", Integer), Column("s", String(5))], [{"n": None, "s": None}] * 3)
    create(engine, "single", [Column("n", Integer), Column("x", Float)], [{"n": 42, "x": 2.5}])
    nulls, _ = profile(engine, "nulls")
    assert column(nulls, "n") == {"count": 3, "null_count": 3, "null_ratio": 1.0, "distinct_count": 0,
                                  "unique_ratio": None, **NUMERIC_NONE}
    assert column(nulls, "s")["max_length"] is None
    single, selects = profile(engine, "single")
    n = column(single, "n")
    assert (n["min"], n["max"], n["mean"], n["stddev"]) == (42, 42, 42.0, None)  # stddev of one row: None, not 0
    assert n["histogram"] == {"edges": [42, 42], "counts": [1]}
    assert column(single, "x")["stddev"] is None and column(single, "x")["unique_ratio"] == 1.0
    assert selects == single.queries == 1  # min == max everywhere: one bin, nothing to count
    assert_json_safe(single)


def test_nan_and_infinity_are_counted_and_kept_out(engine: Engine) -> None:
    values = [1.0, 2.5, math.nan, math.inf, -math.inf, None, 4.0, 2.5]
    create(engine, "specials", [Column("x", Float)], [{"x": v} for v in values])
    metrics = column(profile(engine, "specials")[0], "x")
    finite = [1.0, 2.5, 4.0, 2.5]
    # SQLite cannot store NaN: it becomes NULL on insert.
    nan_stored = engine.dialect.name != "sqlite"
    assert metrics["nan_count"] == (1 if nan_stored else 0)
    assert metrics["null_count"] == (1 if nan_stored else 2)
    assert metrics["inf_count"] == 2
    assert (metrics["min"], metrics["max"]) == (1.0, 4.0)
    assert metrics["distinct_count"] == 3 and metrics["unique_ratio"] == 3 / 4
    assert_close(metrics["mean"], statistics.fmean(finite))
    assert_close(metrics["stddev"], statistics.stdev(finite))
    assert metrics["histogram"] == expected_histogram(finite, 10)


def test_stddev_is_accurate_for_large_values_with_tiny_spread(engine: Engine) -> None:
    values = [1e9 + 0.001 * i for i in range(50)] + [1e9 - 0.0005]
    create(engine, "spread", [Column("x", Double)], [{"x": v} for v in values])
    metrics = column(profile(engine, "spread")[0], "x")
    # The naive sum-of-squares formula returns 0 or garbage here. On SQLite our aggregate (Welford
    # over values shifted by the first one) is exact to rounding. PostgreSQL's float8 stddev_samp
    # (Youngs-Cramer) and DuckDB's are the databases' own one-pass algorithms, with a relative
    # error near eps * |mean| / stddev (7.5e-6 here; measured 4e-5 on DuckDB).
    rel = 1e-9 if engine.dialect.name == "sqlite" else 1e-4
    assert_close(metrics["stddev"], statistics.stdev(values), rel=rel)
    assert_close(metrics["mean"], statistics.fmean(values))


def test_bigints_near_two_to_the_63_neither_overflow_nor_lose_the_spread(engine: Engine) -> None:
    top = 2**63 - 1
    values = [top, top - 1, top - 2, top - 7, top - 1000]
    create(engine, "bigints", [Column("b", BigInteger)], [{"b": v} for v in values])
    result, selects = profile(engine, "bigints")
    metrics = column(result, "b")
    assert (metrics["min"], metrics["max"]) == (top - 1000, top)
    assert_close(metrics["mean"], statistics.fmean(values))
    assert_close(metrics["stddev"], float(statistics.stdev(values)), rel=1e-9)
    assert metrics["histogram"] == expected_histogram(values, 10)
    assert selects == result.queries == 2
    assert_json_safe(result)


@pytest.mark.parametrize("engine", ["duckdb"], indirect=True)
def test_duckdb_unsigned_bigints_near_two_to_the_64_keep_the_spread(engine: Engine) -> None:
    from duckdb_engine.datatypes import UBigInteger

    top = 2**64 - 1
    values = [top, top - 1, top - 5, top - 1000, 7]
    create(engine, "ubigints", [Column("u", UBigInteger)], [{"u": v} for v in values])
    result, _ = profile(engine, "ubigints")
    metrics = column(result, "u")
    assert (metrics["min"], metrics["max"]) == (7, top)
    assert_close(metrics["mean"], statistics.fmean(values))
    assert_close(metrics["stddev"], float(statistics.stdev(values)), rel=1e-12)
    assert metrics["histogram"] == expected_histogram(values, 10)
    assert not any(c.errors for c in result.columns)


def test_bigint_extremes_do_not_overflow_on_any_backend(engine: Engine) -> None:
    values = [2**63 - 1, -(2**63), 2**63 - 1, 0]
    create(engine, "extremes", [Column("b", BigInteger)], [{"b": v} for v in values])
    result, _ = profile(engine, "extremes")
    metrics = column(result, "b")
    assert (metrics["min"], metrics["max"]) == (-(2**63), 2**63 - 1)
    assert_close(metrics["mean"], statistics.fmean(values), rel=1e-9)
    assert_close(metrics["stddev"], float(statistics.stdev(values)), rel=1e-9)
    assert sum(metrics["histogram"]["counts"]) == 4 and not any(c.errors for c in result.columns)


def test_smallint_and_integer_at_their_limits(engine: Engine) -> None:
    small = [-(2**15), 2**15 - 1, 2**15 - 1, 0, -1]
    regular = [-(2**31), 2**31 - 1, 2**31 - 1, 0, -1]
    create(engine, "limits", [Column("s", SmallInteger), Column("i", Integer)],
           [{"s": s, "i": i} for s, i in zip(small, regular)])
    result, _ = profile(engine, "limits")
    for name, values in (("s", small), ("i", regular)):
        metrics = column(result, name)
        assert (metrics["min"], metrics["max"]) == (min(values), max(values)), name
        assert_close(metrics["mean"], float(statistics.mean(values)))
        assert_close(metrics["stddev"], statistics.stdev(values), rel=1e-9)
        assert metrics["histogram"] == expected_histogram(values, 10), name
    assert not any(c.errors for c in result.columns)
    assert_json_safe(result)


def test_texts_of_two_megabytes_have_exact_lengths(engine: Engine) -> None:
    values = ["a" * 2_000_000, "é" * 2_100_000 + "z", "", "日本" * 1_000_000, None]
    create(engine, "big_texts", [Column("t", Text)], [{"t": v} for v in values])
    metrics = column(profile(engine, "big_texts")[0], "t")
    present = [v for v in values if v is not None]
    lengths = [len(v) for v in present]
    assert (metrics["min_length"], metrics["max_length"]) == (0, 2_100_001) == (min(lengths), max(lengths))
    assert metrics["avg_length"] == statistics.fmean(lengths)
    assert metrics["min"] == "" and metrics["max"] == max(present)  # code-point order: 日 > é > a
    assert metrics["distinct_count"] == 4 and metrics["null_count"] == 1


def test_binary_columns_get_only_the_metrics_that_apply(engine: Engine) -> None:
    # SQLite BLOB, PostgreSQL bytea, DuckDB BLOB: no order, length or mean is computed for bytes.
    values = [b"\x00\xff", b"\x00\xff", b"\x01", None, b"", bytes(range(256))]
    create(engine, "blobs", [Column("b", LargeBinary)], [{"b": v} for v in values])
    result, selects = profile(engine, "blobs")
    assert column(result, "b") == {"count": 6, "null_count": 1, "null_ratio": 1 / 6, "distinct_count": 4,
                                   "unique_ratio": 4 / 5}
    assert set(column(result, "b")) == set(BASE_METRICS)
    assert not result.columns[0].errors and selects == result.queries == 1
    assert_json_safe(result)


def test_timestamps_without_time_zone_are_exact(engine: Engine) -> None:
    stamps = [datetime(2024, 2, 29, 23, 59, 59, 999999), datetime(1, 1, 1), None,
              datetime(9999, 12, 31, 23, 59, 59, 999999), datetime(1970, 1, 1, 0, 0, 0, 1)]
    create(engine, "naive", [Column("ts", DateTime(timezone=False))], [{"ts": s} for s in stamps])
    result, _ = profile(engine, "naive")
    metrics = column(result, "ts")
    # Stored without a zone, read back as the same wall-clock time in UTC.
    assert metrics["min"] == datetime(1, 1, 1, tzinfo=timezone.utc)
    assert metrics["max"] == datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=timezone.utc)
    assert (metrics["distinct_count"], metrics["null_count"]) == (4, 1)
    assert not result.columns[0].errors
    assert_json_safe(result)


@pytest.mark.parametrize("engine", ["postgresql", "duckdb"], indirect=True)
def test_decimals_keep_exact_bounds(engine: Engine) -> None:
    # SQLite is left out: it stores NUMERIC values as REAL, so exact digits never reach it.
    values = [Decimal("1234567890123456789012345678.0123456789"), Decimal("-0.0000000001"), Decimal("1.5"),
              Decimal("1.5")]
    create(engine, "decimals", [Column("d", Numeric(38, 10))], [])
    with engine.begin() as conn:  # as text: the DuckDB driver binds Decimal parameters as DOUBLE
        for v in values:
            conn.execute(insert(Table("decimals", MetaData(), Column("d"))).values(d=cast(literal(str(v)), Numeric(38, 10))))
    metrics = column(profile(engine, "decimals")[0], "d")
    assert metrics["min"] == Decimal("-0.0000000001") and isinstance(metrics["min"], Decimal)
    assert metrics["max"] == values[0] and isinstance(metrics["max"], Decimal)
    assert_close(metrics["mean"], float(statistics.mean(values)))
    assert_close(metrics["stddev"], float(statistics.stdev(values)), rel=1e-9)
    lo, hi = Fraction(values[1]), Fraction(values[0])
    edges = metrics["histogram"]["edges"]
    assert edges[0] == values[1] and edges[-1] == values[0]
    assert all(abs(Fraction(e) - (lo + (hi - lo) * i / 10)) < Fraction(1, 10**40) for i, e in enumerate(edges))
    assert metrics["histogram"]["counts"] == [3, 0, 0, 0, 0, 0, 0, 0, 0, 1]
    assert encode_metric(metrics["max"]) == "1234567890123456789012345678.0123456789"


def test_booleans(engine: Engine) -> None:
    values = [True, False, True, None, True]
    create(engine, "flags", [Column("f", Boolean)], [{"f": v} for v in values])
    metrics = column(profile(engine, "flags")[0], "f")
    assert metrics == {"count": 5, "null_count": 1, "null_ratio": 0.2, "distinct_count": 2, "unique_ratio": 0.5,
                       "mean": pytest.approx(3 / 4)}


def test_timestamps_with_time_zones_and_dates(engine: Engine) -> None:
    plus2 = timezone(timedelta(hours=2))
    stamps = [datetime(2024, 1, 1, 1, 30, tzinfo=plus2), datetime(2023, 12, 31, 23, 45, tzinfo=timezone.utc),
              datetime(2024, 6, 1, 8, 0, 0, 123456, tzinfo=timezone(timedelta(hours=-5)))]
    if engine.dialect.name == "sqlite":
        # SQLite has no time zones: applications store UTC (as the quickstart loader does).
        stamps = [s.astimezone(timezone.utc) for s in stamps]
    days = [date(2020, 2, 29), date(1999, 12, 31), None]
    clocks = [time(23, 59, 59, 500), time(0, 0), time(12, 30)]
    create(engine, "times", [Column("ts", DateTime(timezone=True)), Column("d", Date), Column("t", Time)],
           [{"ts": s, "d": d, "t": t} for s, d, t in zip(stamps, days, clocks)])
    result, _ = profile(engine, "times")
    ts, d, t = column(result, "ts"), column(result, "d"), column(result, "t")
    assert (t["min"], t["max"]) == (time(0, 0), time(23, 59, 59, 500))
    # 2024-01-01 01:30+02:00 is 2023-12-31 23:30 UTC: earlier than 23:45 UTC.
    assert ts["min"] == datetime(2023, 12, 31, 23, 30, tzinfo=timezone.utc)
    assert ts["max"] == datetime(2024, 6, 1, 13, 0, 0, 123456, tzinfo=timezone.utc)
    assert ts["distinct_count"] == 3
    assert (d["min"], d["max"], d["null_count"]) == (date(1999, 12, 31), date(2020, 2, 29), 1)
    assert_json_safe(result)


@pytest.mark.parametrize("engine", ["sqlite"], indirect=True)
def test_sqlite_timestamp_text_with_offsets_compares_as_instants(engine: Engine) -> None:
    # SQLite keeps timestamps as text; written here as other applications write them.
    stamps = ["2024-01-01 01:30+02:00",             # 2023-12-31 23:30 UTC: the earliest instant
              "2023-12-31 23:45:00Z",               # 23:45 UTC: the earliest text
              "2023-12-31T20:00:00.123456-05:00",   # 2024-01-01 01:00:00.123456 UTC: the latest instant
              "2024-01-01 00:15:00.500000",         # no offset: UTC
              "2023-12-31 23:30:00+00:00"]          # the first instant again, spelled differently
    days = ["2024-01-01", "2023-12-31", "2023-12-30", None, "2024-01-01"]
    create(engine, "stamps", [Column("ts", DateTime(timezone=True)), Column("d", Date)], [])
    raw = Table("stamps", MetaData(), Column("ts", String), Column("d", String))
    with engine.begin() as conn:
        conn.execute(insert(raw), [{"ts": s, "d": d} for s, d in zip(stamps, days)])
    result, _ = profile(engine, "stamps")
    ts, d = column(result, "ts"), column(result, "d")
    assert ts["min"] == datetime(2023, 12, 31, 23, 30, tzinfo=timezone.utc)
    assert ts["max"] == datetime(2024, 1, 1, 1, 0, 0, 123456, tzinfo=timezone.utc)
    assert ts["distinct_count"] == 4  # distinct instants, not distinct spellings
    assert (d["min"], d["max"]) == (date(2023, 12, 30), date(2024, 1, 1))
    assert type(d["min"]) is date  # dates stay dates
    assert not any(c.errors for c in result.columns)
    assert_json_safe(result)


def test_unicode_string_lengths_count_characters(engine: Engine) -> None:
    values = ["héllo", "日本語", "😀😀", "", None, "plain"]
    create(engine, "words", [Column("w", String(20))], [{"w": v} for v in values])
    metrics = column(profile(engine, "words")[0], "w")
    present = [v for v in values if v is not None]
    lengths = [len(v) for v in present]
    assert (metrics["min_length"], metrics["max_length"]) == (min(lengths), max(lengths))
    assert_close(metrics["avg_length"], statistics.fmean(lengths))
    assert (metrics["min"], metrics["max"]) == (min(present), max(present))
    assert metrics["distinct_count"] == 5 and metrics["null_count"] == 1


WEIRD_COLUMNS = ["select", "order", "Mixed Case", "semi;colon", "quote'single", 'quote"double', "back`tick",
                 "dot.ted", "per%cent"]


def test_identifiers_are_quoted(engine: Engine) -> None:
    name = 'We"ird.ta`ble; drop \'x'
    rows = [{c: i * 10 + k for k, c in enumerate(WEIRD_COLUMNS)} for i in range(4)]
    create(engine, name, [Column(c, Integer) for c in WEIRD_COLUMNS], rows)
    result, selects = profile(engine, name)
    assert result.table == name and result.row_count == 4
    for k, c in enumerate(WEIRD_COLUMNS):
        assert column(result, c)["min"] == k and column(result, c)["max"] == 30 + k, c
        assert column(result, c)["distinct_count"] == 4
    assert selects == result.queries == 2


@pytest.mark.parametrize("engine", ["sqlite"], indirect=True)
def test_sqlite_text_in_numeric_columns_is_counted_and_kept_out_of_the_statistics(engine: Engine) -> None:
    # SQLite's type affinity keeps a value that does not look like a number as it is (text, blob).
    create(engine, "loose", [Column("n", Integer), Column("d", Numeric(10, 2)), Column("x", Float)], [])
    rows = [(1, "1.5", 1.0), ("abc", "x", 2.0), (3, "2.25", "zz"), (None, None, None), (5, "4.5", 4.0),
            (b"\x00", "x", 1.0), (3, None, math.inf)]
    with engine.begin() as conn:
        conn.execute(insert(Table("loose", MetaData(), Column("n"), Column("d"), Column("x"))),
                     [dict(zip("ndx", r)) for r in rows])
    result, selects = profile(engine, "loose")
    assert not any(c.errors for c in result.columns)
    assert selects == result.queries == 3  # the first select, the three columns again without text, histograms
    # n: numbers 1, 3, 5, 3 (mean 3, squared deviations 4 + 0 + 4 + 0); 'abc' and the blob are no numbers.
    assert column(result, "n") == {
        "count": 7, "null_count": 1, "null_ratio": 1 / 7, "non_numeric_count": 2, "distinct_count": 3,
        "unique_ratio": 3 / 4, "min": 1, "max": 5, "mean": 3.0, "stddev": math.sqrt(8 / 3),
        "histogram": {"edges": [1, 1.4, 1.8, 2.2, 2.6, 3.0, 3.4, 3.8, 4.2, 4.6, 5], "counts": [1, 0, 0, 0, 0, 2, 0, 0, 0, 1]}}
    # d: numbers 1.5, 2.25, 4.5 (mean 2.75; deviations -1.25, -0.5, 1.75); 'x' twice.
    d = column(result, "d")
    assert (d["non_numeric_count"], d["null_count"], d["distinct_count"], d["unique_ratio"]) == (2, 2, 3, 1.0)
    assert (d["min"], d["max"], d["mean"]) == (1.5, 4.5, 2.75)
    assert_close(d["stddev"], math.sqrt((1.25**2 + 0.5**2 + 1.75**2) / 2))
    assert d["histogram"]["counts"] == [1, 0, 1, 0, 0, 0, 0, 0, 0, 1]  # width 0.3: 2.25 in [2.1, 2.4)
    # x: numbers 1.0, 2.0, 4.0, 1.0 and +Infinity; 'zz' is no number.
    x = column(result, "x")
    assert (x["non_numeric_count"], x["inf_count"], x["nan_count"], x["distinct_count"]) == (1, 1, 0, 3)
    assert (x["min"], x["max"], x["mean"], x["unique_ratio"]) == (1.0, 4.0, 2.0, 3 / 4)
    # Found through max, which is computed for that even when not asked for.
    only, _ = profile(engine, "loose", metrics=("count", "distinct_count", "unique_ratio"))
    assert column(only, "n") == {"count": 7, "distinct_count": 3, "unique_ratio": 3 / 4, "non_numeric_count": 2}


def test_nan_and_infinity_are_left_out_of_distinct_count_and_unique_ratio(engine: Engine) -> None:
    # SQLite stores NaN as NULL: it counts in null_count there, in nan_count elsewhere.
    create(engine, "specials2", [Column("x", Float), Column("y", Float)],
           [{"x": x, "y": y} for x, y in [(math.inf, math.inf), (1.0, -math.inf), (-math.inf, math.nan)]])
    result, _ = profile(engine, "specials2")
    x, y = column(result, "x"), column(result, "y")
    assert (x["distinct_count"], x["unique_ratio"], x["inf_count"]) == (1, 1.0, 2)  # {1.0}: one of one
    assert (y["distinct_count"], y["unique_ratio"], y["inf_count"]) == (0, None, 2)  # no finite value
    assert (y["nan_count"], y["null_count"]) == ((0, 1) if engine.dialect.name == "sqlite" else (1, 0))


@pytest.mark.parametrize("engine", ["sqlite"], indirect=True)
def test_sqlite_reals_between_integer_bounds_fall_in_their_bins(engine: Engine) -> None:
    # SQLite keeps 2.5 in an INTEGER column and 2.25 in a DECIMAL one as REAL, 1 and 5 as INTEGER:
    # min and max are integers, but the values between them are not.
    create(engine, "mixed", [Column("n", Integer), Column("d", Numeric(10, 2))], [])
    with engine.begin() as conn:
        conn.execute(insert(Table("mixed", MetaData(), Column("n"), Column("d"))),
                     [{"n": n, "d": d} for n, d in [(1, 1), (2.5, 2.25), (5, 7), (3, 2.2)]])
    result, _ = profile(engine, "mixed")
    n, d = column(result, "n"), column(result, "d")
    # n: width 0.4, 2.5 in [2.2, 2.6), 3 in [3.0, 3.4); d: width 0.6, 2.2 and 2.25 in [2.2, 2.8).
    assert n["histogram"] == {"edges": [1, 1.4, 1.8, 2.2, 2.6, 3.0, 3.4, 3.8, 4.2, 4.6, 5],
                              "counts": [1, 0, 0, 1, 0, 1, 0, 0, 0, 1]}
    assert d["histogram"] == {"edges": [1, 1.6, 2.2, 2.8, 3.4, 4.0, 4.6, 5.2, 5.8, 6.4, 7],
                              "counts": [1, 0, 2, 0, 0, 0, 0, 0, 0, 1]}
