"""Helpers shared by the profiling tests: engines per backend, tasks from reflection, expectations.

Expected values here are computed independently of the engine: from Python data with the
``statistics`` module, exact ``Fraction`` arithmetic and ``bisect`` (not cumulative counts).
"""

from __future__ import annotations

import bisect
import math
from fractions import Fraction
from pathlib import Path
from typing import Any, Iterable

import pytest
from sqlalchemy import event
from sqlalchemy.engine import Engine

from baselinr.config.models import ALL_METRICS, ConnectionConfig
from baselinr.connectors import create_engine, inspect_schema
from baselinr.connectors.catalog import TableInfo
from baselinr.profiling import ProfilingResult, profile_table
from planner.models import SelectionRef, TaskSpec

BACKENDS = ["sqlite", "postgresql", "duckdb"]


def make_engine(backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> Engine:
    """A fresh, empty warehouse of the backend (PostgreSQL: a new database on the test server)."""
    if backend == "postgresql":
        return create_engine(ConnectionConfig(**request.getfixturevalue("pg_db")))
    filepath = str(tmp_path / f"warehouse.{backend}")
    return create_engine(ConnectionConfig(type="duckdb" if backend == "duckdb" else "sqlite", filepath=filepath))


def schema_of(engine: Engine) -> str:
    return "public" if engine.dialect.name == "postgresql" else "main"


def task_for(table: TableInfo, metrics: Iterable[str] = ALL_METRICS, histograms: bool = True,
             bins: int = 10) -> TaskSpec:
    return TaskSpec(id=f"{table.warehouse}.{table.schema_}.{table.name}", warehouse=table.warehouse,
                    schema=table.schema_, table=table.name, table_kind=table.kind, columns=table.columns,
                    fingerprint=table.fingerprint, metrics=tuple(metrics), compute_histograms=histograms,
                    histogram_bins=bins, selection=SelectionRef(index=0, kind="table", description="test"))


def reflect(engine: Engine, name: str) -> TableInfo:
    tables = {t.name: t for t in inspect_schema(engine, "wh", schema_of(engine))}
    return tables[name]


class StatementCounter:
    """Counts the statements an engine executes, SAVEPOINT bookkeeping apart."""

    def __init__(self, engine: Engine) -> None:
        self.statements: list[str] = []
        event.listen(engine, "before_cursor_execute", self._record)
        self.engine = engine

    def _record(self, _conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        self.statements.append(statement)

    @property
    def selects(self) -> int:
        return sum(1 for s in self.statements if s.lstrip().upper().startswith("SELECT"))

    def close(self) -> None:
        event.remove(self.engine, "before_cursor_execute", self._record)


def profile(engine: Engine, name: str, **task_options: Any) -> tuple[ProfilingResult, int]:
    """Profile a table (reflected now) and count the SELECTs it issued."""
    task = task_for(reflect(engine, name), **task_options)
    counter = StatementCounter(engine)
    try:
        with engine.connect() as conn:
            result = profile_table(conn, task)
    finally:
        counter.close()
    return result, counter.selects


def column(result: ProfilingResult, name: str) -> dict[str, Any]:
    return next(c for c in result.columns if c.name == name).metrics


def expected_histogram(values: list[Any], bins: int) -> dict[str, list[Any]]:
    """Equal-width bins [e_k, e_k+1), last one closed, with e_i = lo + (hi - lo) * i / bins."""
    lo, hi = min(values), max(values)
    if lo == hi:
        return {"edges": [lo, hi], "counts": [len(values)]}
    counts = [0] * bins
    if all(isinstance(v, int) for v in values):
        # Exact integer arithmetic: x is in bin floor((x - lo) * bins / (hi - lo)).
        for v in values:
            counts[min((v - lo) * bins // (hi - lo), bins - 1)] += 1
        edges = [lo, *(float(Fraction(lo) + Fraction(hi - lo) * i / bins) for i in range(1, bins)), hi]
        return {"edges": edges, "counts": counts}
    inner = [lo + (hi - lo) * i / bins for i in range(1, bins)]
    for v in values:
        counts[bisect.bisect_right(inner, v)] += 1
    return {"edges": [lo, *inner, hi], "counts": counts}


def approx(value: float, rel: float = 1e-12) -> Any:
    return pytest.approx(value, rel=rel, abs=0 if value else 1e-12)


def assert_close(actual: Any, expected: float, rel: float = 1e-12) -> None:
    assert actual is not None and math.isfinite(actual)
    assert actual == approx(expected, rel)
