"""Results storage on every backend: one transaction per table, idempotent, exact values."""

from __future__ import annotations

from datetime import datetime, timezone
from decimal import Decimal

import pytest
from sqlalchemy import func, insert, select

from baselinr.config import ConnectionConfig, StorageConfig
from baselinr.profiling.result import ColumnProfile, ProfilingResult
from baselinr.storage import decode_metric, encode_metric, open_storage, read_run_results, write_result

AT = datetime(2024, 5, 1, 12, 30, tzinfo=timezone.utc)


def result(rows: int, mean: Decimal) -> ProfilingResult:
    return ProfilingResult(
        warehouse="wh", schema="main", table="orders", row_count=rows, profiled_at=AT, duration_seconds=0.5,
        columns=(ColumnProfile(name="amount", type="NUMERIC(38, 10)",
                               metrics={"count": rows, "min": Decimal("-12345678901234567890.0000000001"),
                                        "mean": mean, "histogram": {"edges": [0, 1.5], "counts": [rows]}}),
                 ColumnProfile(name="at", type="TIMESTAMP", metrics={"max": AT, "null_ratio": None})),
    )


@pytest.fixture(params=["sqlite", "postgres"])
def storage(request, tmp_path):
    if request.param == "sqlite":
        conn = ConnectionConfig(type="sqlite", filepath=str(tmp_path / "nested" / "store.db"))
    else:
        conn = ConnectionConfig(**request.getfixturevalue("pg_db"))
    store = open_storage(StorageConfig(connection=conn))
    yield store
    store.engine.dispose()


def test_rewriting_a_table_in_a_run_replaces_it(storage):
    t = storage.tables
    with storage.engine.begin() as conn:
        write_result(conn, t, "run1", "test", result(10, Decimal("1.5")))
    with storage.engine.begin() as conn:
        write_result(conn, t, "run1", "test", result(11, Decimal("2.25")))
        write_result(conn, t, "run2", "test", result(12, Decimal("3")))
    with storage.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(t.runs)).scalar() == 2
        # 4 metrics of "amount" + 2 of "at", per run
        assert conn.execute(select(func.count()).select_from(t.results)).scalar() == 12
        rows = dict(conn.execute(select(t.results.c.metric_name, t.results.c.metric_value)
                                 .where(t.results.c.run_id == "run1", t.results.c.column_name == "amount")).all())
        run = conn.execute(select(t.runs).where(t.runs.c.run_id == "run1")).mappings().one()
    assert run["row_count"] == 11 and run["column_count"] == 2 and run["status"] == "succeeded"
    assert decode_metric(rows["mean"]) == Decimal("2.25")
    assert decode_metric(rows["min"]) == Decimal("-12345678901234567890.0000000001")
    assert decode_metric(rows["histogram"]) == {"counts": [11], "edges": [0, Decimal("1.5")]}


def test_a_metric_that_failed_is_a_null_value_with_its_reason(storage):
    failed = ProfilingResult(
        warehouse="wh", schema="main", table="t", row_count=3, profiled_at=AT, duration_seconds=0.1,
        columns=(ColumnProfile(name="x", type="REAL", metrics={"count": 3, "stddev": None},
                               errors={"histogram": "range too wide"}),))
    with storage.engine.begin() as conn:
        write_result(conn, storage.tables, "run1", "test", failed)
    res = storage.tables.results
    with storage.engine.connect() as conn:
        rows = conn.execute(select(res.c.metric_name, res.c.metric_value, res.c.error).order_by(res.c.metric_name)).all()
    assert [tuple(r) for r in rows] == [("count", "3", None), ("histogram", None, "range too wide"),
                                        ("stddev", None, None)]


def test_row_counts_and_ids_past_two_to_the_31_are_kept(storage):
    t, big = storage.tables, 2**31 + 7
    seed = {"id": big, "run_id": "seed", "warehouse_name": "wh", "dataset_name": "x", "schema_name": "main",
            "column_name": "c", "column_type": "INTEGER", "metric_name": "count", "profiled_at": AT}
    with storage.engine.begin() as conn:
        conn.execute(insert(t.results).values(seed))
        if storage.engine.dialect.name == "postgresql":  # SQLite numbers new rows from the largest id
            conn.execute(select(func.setval(func.pg_get_serial_sequence(t.results.name, "id"), big)))
        write_result(conn, t, "run1", "test", result(3 * 2**31, Decimal("1")))
    with storage.engine.connect() as conn:
        stored = read_run_results(conn, t, "run1")
        ids = conn.execute(select(t.results.c.id).where(t.results.c.run_id == "run1")).scalars().all()
    assert stored[("wh", "main", "orders")]["row_count"] == 6442450944
    assert stored[("wh", "main", "orders")]["columns"]["amount"]["count"] == 6442450944
    assert sorted(ids) == [big + 1, big + 2, big + 3, big + 4, big + 5, big + 6]


def test_a_failed_transaction_leaves_nothing(storage):
    t = storage.tables
    with pytest.raises(RuntimeError):
        with storage.engine.begin() as conn:
            write_result(conn, t, "run1", "test", result(10, Decimal("1")))
            raise RuntimeError("crash after the write, before commit")
    with storage.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(t.results)).scalar() == 0


def test_encoding_refuses_nan_and_keeps_types():
    assert encode_metric(None) is None
    assert encode_metric(2 ** 63 - 1) == "9223372036854775807"
    assert encode_metric(True) == "true"
    assert encode_metric(AT) == '"2024-05-01T12:30:00+00:00"'
    with pytest.raises(ValueError):
        encode_metric(float("nan"))
    with pytest.raises(ValueError):
        encode_metric(Decimal("Infinity"))
