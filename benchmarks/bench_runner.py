"""Runner benchmarks on a throwaway PostgreSQL server (and SQLite). Prints ratios measured in one run.

    python benchmarks/bench_runner.py [--quick]

1. speedup: 64 views costing a fixed pg_sleep per scan, max_workers=8 vs 1 (target >= 7x, limit 8x)
2. mixed: SQLite (cap 1) + PostgreSQL (cap 7) together vs the slower warehouse alone (target ~1.0)
3. overhead: runner time per task on trivial tables minus a bare profile_table call, vs one profiling query
4. skew: a few large tables among many small, plan order (largest first) vs name order, latency-bound
   (the warehouse has room for every worker) and CPU-bound (this machine's cores are the limit)
"""

from __future__ import annotations

import argparse
import sqlite3
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import planner  # noqa: E402
from baselinr.config import parse_config  # noqa: E402
from baselinr.connectors import gather_catalog  # noqa: E402
from baselinr.events.bus import EventBus  # noqa: E402
from baselinr.profiling import profile_table  # noqa: E402
from baselinr.runner import RunOptions, RunStatus, apply_plan  # noqa: E402
from baselinr.runner.reporter import SilentReporter  # noqa: E402
from planner.compiler import seal  # noqa: E402
from tests.conftest import create_database  # noqa: E402
from tests.pgserver import remove_server, start_server  # noqa: E402
from tests.test_runner_fixtures import compile_plan, make_slow_views, pg_exec, pg_url  # noqa: E402

METRICS = ["count", "null_count", "distinct_count", "min", "max", "mean"]


def config(work: Path, sources: dict, tables: list[dict], max_workers: int, limits: dict[str, int]) -> Any:
    return parse_config({
        "sources": sources, "storage": {"connection": {"type": "sqlite", "filepath": str(work / "store.db")}},
        "profiling": {"tables": tables, "metrics": METRICS, "compute_histograms": False},
        "execution": {"max_workers": max_workers, "warehouse_limits": limits}})


def timed_apply(plan, cfg, max_workers: int) -> float:
    start = time.perf_counter()
    summary = apply_plan(plan, cfg, RunOptions(max_workers=max_workers), SilentReporter(), EventBus())
    elapsed = time.perf_counter() - start
    if summary.status != RunStatus.SUCCEEDED:
        raise SystemExit(f"benchmark run failed: {summary.problems[:3]}")
    return elapsed


def bench_speedup(server, work: Path, n: int, sleep: float) -> None:
    db = create_database(server, "bench_speedup")
    make_slow_views(db, [f"v{i:02d}" for i in range(n)], sleep)
    cfg = config(work, {"pg": db}, [{"pattern": "v*"}], 8, {"pg": 8})
    plan = compile_plan(cfg)
    one = timed_apply(plan, cfg, 1)
    eight = timed_apply(plan, cfg, 8)
    print(f"speedup: {n} views x pg_sleep({sleep}): max_workers=1 {one:.2f}s, max_workers=8 {eight:.2f}s, "
          f"speedup {one / eight:.2f}x (ideal {n * sleep:.1f}s / {n * sleep / 8:.1f}s = 8x)")


def make_sqlite(path: Path, tables: int, rows: int) -> None:
    with sqlite3.connect(path) as raw:
        for i in range(tables):
            raw.execute(f"CREATE TABLE s{i} AS WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n "
                        f"WHERE i < {rows}) SELECT i, i * 0.5 AS x, 'k' || (i % 97) AS k FROM n")


def bench_mixed(server, work: Path, n_pg: int, sleep: float, n_lite: int, lite_rows: int) -> None:
    db = create_database(server, "bench_mixed")
    make_slow_views(db, [f"v{i:02d}" for i in range(n_pg)], sleep)
    lite = work / "mixed.db"
    make_sqlite(lite, n_lite, lite_rows)
    sources = {"lite": {"type": "sqlite", "filepath": str(lite)}, "pg": db}
    sel_lite, sel_pg = {"pattern": "s*", "source": "lite"}, {"pattern": "v*", "source": "pg"}
    limits = {"lite": 1, "pg": 7}
    alone_lite = timed_apply(*_plan(work, {"lite": sources["lite"]}, [{"pattern": "s*"}], limits), 8)
    alone_pg = timed_apply(*_plan(work, {"pg": db}, [{"pattern": "v*"}], limits), 8)
    both = timed_apply(*_plan(work, sources, [sel_lite, sel_pg], limits), 8)
    slower = max(alone_lite, alone_pg)
    print(f"mixed: SQLite cap 1 alone {alone_lite:.2f}s, PostgreSQL cap 7 alone {alone_pg:.2f}s, together "
          f"{both:.2f}s = {both / slower:.2f}x the slower warehouse alone (sum would be "
          f"{(alone_lite + alone_pg) / slower:.2f}x)")


def _plan(work: Path, sources: dict, tables: list[dict], limits: dict[str, int]) -> tuple:
    cfg = config(work, sources, tables, 8, {k: v for k, v in limits.items() if k in sources})
    return compile_plan(cfg), cfg


def bench_overhead(server, work: Path, n: int) -> None:
    """Runner overhead = wall time of the run minus the time tasks spent executing (attempts)."""
    db = create_database(server, "bench_overhead")
    pg_exec(db, *(f"CREATE TABLE t{i:02d} AS SELECT 1 AS id, 1.5 AS amount, 'a' AS label" for i in range(n)),
            "CREATE TABLE big AS SELECT g AS id, g * 1.5 AS amount, 'n' || (g % 1000) AS label "
            "FROM generate_series(1, 200000) g")
    cfg = config(work, {"pg": db}, [{"pattern": "t*"}], 1, {})
    plan = compile_plan(cfg)
    engine = create_engine(pg_url(db))
    with engine.connect() as conn:
        start = time.perf_counter()
        for task in plan.tasks:
            profile_table(conn, task)
        bare = (time.perf_counter() - start) / n
        big_task = compile_plan(config(work, {"pg": db}, [{"table": "big"}], 1, {})).tasks[0]
        start = time.perf_counter()
        profile_table(conn, big_task)
        big = time.perf_counter() - start
    engine.dispose()
    spans: dict[str, float] = {}
    bus = EventBus()
    bus.register(lambda e: spans.__setitem__(e.metadata.get("table", ""), time.perf_counter() - spans.get(
        e.metadata.get("table", ""), 0.0)) if e.event_type in ("profiling_started", "profiling_completed") else None)
    start = time.perf_counter()
    apply_plan(plan, cfg, RunOptions(max_workers=1), SilentReporter(), bus)
    wall = time.perf_counter() - start
    executing = sum(spans.values()) / n
    overhead = wall / n - executing
    print(f"overhead: {n} one-row tables, sequential: {wall / n * 1000:.1f} ms/task in all; executing a task "
          f"(connect, backend pid, staleness reflection, profile) {executing * 1000:.1f} ms vs bare profile_table "
          f"{bare * 1000:.1f} ms; runner overhead (state writes, scheduling, events) {overhead * 1000:.1f} ms/task "
          f"= {overhead / big:.1%} of one profiling query on a 200k-row table ({big * 1000:.0f} ms), "
          f"{overhead / bare:.0%} of a one-row one")


def bench_skew(server, work: Path, n_small: int) -> None:
    """Latency-bound skew: views whose scan sleeps in proportion to their size, sizes in the catalog.

    Views have no row estimates, so the catalog is given the emulated sizes; the runner only
    sees the plan's order, which is what is measured.
    """
    db = create_database(server, "bench_skew")
    make_slow_views(db, ["z_big0", "z_big1"], 2.0)
    pg_exec(db, *(f"CREATE VIEW a_small{i:02d} AS SELECT b.* FROM base b, (SELECT pg_sleep(0.1)) s"
                  for i in range(n_small)))
    cfg = config(work, {"pg": db}, [{"pattern": "*_*"}], 4, {"pg": 4})
    catalog = gather_catalog(cfg)
    catalog.tables = [t.model_copy(update={"estimated_rows": 20 * 10**6 if "big" in t.name else 10**6})
                      for t in catalog.tables]
    _compare_orders(planner.compile(cfg, catalog), cfg, f"2 views of 2.0 s + {n_small} of 0.1 s per scan")


def bench_skew_cpu(server, work: Path, big_rows: int, n_small: int) -> None:
    """CPU-bound skew: real tables of skewed sizes (estimates from ANALYZE) on this machine's cores."""
    db = create_database(server, "bench_skew_cpu")
    pg_exec(db, *(f"CREATE TABLE z_big{i} AS SELECT g AS id, g * 1.5 AS amount, 'n' || (g % 5000) AS label "
                  f"FROM generate_series(1, {big_rows}) g" for i in range(2)),
            *(f"CREATE TABLE a_small{i:02d} AS SELECT g AS id, g * 1.5 AS amount, 'n' || g AS label "
              f"FROM generate_series(1, 20000) g" for i in range(n_small)),
            "ANALYZE")
    cfg = config(work, {"pg": db}, [{"pattern": "*_*"}], 4, {"pg": 4})
    _compare_orders(compile_plan(cfg), cfg, f"CPU-bound, 2 tables of {big_rows} rows + {n_small} of 20000")


def _compare_orders(plan, cfg, what: str) -> None:
    assert plan.tasks[0].table.startswith("z_big"), "the plan puts the largest tables first"
    by_name = seal(plan.model_copy(update={"tasks": tuple(sorted(plan.tasks, key=lambda t: t.id))}))
    planned = timed_apply(plan, cfg, 4)
    named = timed_apply(by_name, cfg, 4)
    print(f"skew ({what}, 4 workers): plan order (largest first) {planned:.2f}s, name order {named:.2f}s: "
          f"name order / plan order = {named / planned:.2f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="Smaller sizes (a smoke run, not the figures).")
    quick = parser.parse_args().quick
    server = start_server()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            work = Path(tmp)
            bench_speedup(server, work, 64, 0.05 if quick else 0.25)
            bench_mixed(server, work, 28 if quick else 56, 0.05 if quick else 0.25, 4 if quick else 8,
                        20000 if quick else 400000)
            bench_overhead(server, work, 16 if quick else 64)
            bench_skew(server, work, 12 if quick else 36)
            bench_skew_cpu(server, work, 200000 if quick else 1000000, 8 if quick else 24)
    finally:
        remove_server(server)


if __name__ == "__main__":
    main()
