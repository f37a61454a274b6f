"""Write profiling results and run rows; one transaction per table, idempotent per (run, table)."""

from __future__ import annotations

import json
import math
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import and_, delete, insert
from sqlalchemy.engine import Connection

from baselinr.profiling.result import ProfilingResult
from baselinr.storage.schema import StorageTables


def encode_metric(value: Any) -> str | None:
    """JSON text of a metric value. Decimals keep every digit; NaN/Infinity are refused."""
    return None if value is None else _dump(value)


def _dump(value: Any) -> str:
    # Hand-rolled for numbers only: json.dumps cannot write a Decimal as an exact JSON number.
    if value is None or isinstance(value, (bool, str)):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, (Decimal, float)):
        if not math.isfinite(value):
            raise ValueError(f"non-finite number {value} cannot be stored as JSON")
        return format(value, "f") if isinstance(value, Decimal) else repr(value)
    if isinstance(value, (datetime, date, time)):
        return json.dumps(value.isoformat())
    if isinstance(value, timedelta):
        return repr(value.total_seconds())
    if isinstance(value, dict):
        return "{" + ",".join(f"{json.dumps(str(k), ensure_ascii=False)}:{_dump(v)}"
                              for k, v in sorted(value.items(), key=lambda kv: str(kv[0]))) + "}"
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(_dump(v) for v in value) + "]"
    return json.dumps(str(value), ensure_ascii=False)


def decode_metric(text: str | None) -> Any:
    """Inverse of ``encode_metric``; non-integral numbers come back as exact ``Decimal``."""
    return None if text is None else json.loads(text, parse_float=Decimal)


def write_result(conn: Connection, tables: StorageTables, run_id: str, environment: str,
                 result: ProfilingResult, status: str = "succeeded") -> None:
    """Replace this run's rows for the table with ``result``, inside the caller's transaction.

    A metric that could not be computed is a row with a NULL value and its reason in ``error``.
    """
    key = {"run_id": run_id, "warehouse_name": result.warehouse, "schema_name": result.schema_,
           "dataset_name": result.table}
    for table in (tables.results, tables.runs):
        conn.execute(delete(table).where(and_(*(table.c[k] == v for k, v in key.items()))))
    rows = [
        {**key, "column_name": col.name, "column_type": col.type, "metric_name": name, "profiled_at": result.profiled_at,
         **({"metric_value": None, "error": col.errors[name]} if name in col.errors
            else {"metric_value": encode_metric(col.metrics[name]), "error": None})}
        for col in result.columns for name in sorted({*col.metrics, *col.errors})
    ]
    if rows:
        conn.execute(insert(tables.results), rows)
    conn.execute(insert(tables.runs).values(
        **key, profiled_at=result.profiled_at, environment=environment, status=status,
        row_count=result.row_count, column_count=len(result.columns), duration_seconds=result.duration_seconds,
    ))


def read_run_results(conn: Connection, tables: StorageTables, run_id: str) -> dict[tuple[str, str, str], dict]:
    """One run's stored results: (warehouse, schema, table) -> {"row_count", "columns": {col: {metric: value}}}."""
    from sqlalchemy import select

    runs, results = tables.runs, tables.results
    out: dict[tuple[str, str, str], dict] = {}
    for row in conn.execute(select(runs).where(runs.c.run_id == run_id)).mappings():
        key = (row["warehouse_name"], row["schema_name"], row["dataset_name"])
        out[key] = {"row_count": row["row_count"], "columns": {}}
    query = select(results.c.warehouse_name, results.c.schema_name, results.c.dataset_name, results.c.column_name,
                   results.c.metric_name, results.c.metric_value).where(results.c.run_id == run_id)
    for wh, schema, table, column, metric, value in conn.execute(query):
        columns = out.setdefault((wh, schema, table), {"row_count": None, "columns": {}})["columns"]
        columns.setdefault(column, {})[metric] = decode_metric(value)
    return out
