"""Planner scale: compile a synthetic catalog of N tables x 20 columns; time and peak memory.

    python benchmarks/bench_planner.py                 # 25,000 and 100,000 tables
    python benchmarks/bench_planner.py --sizes 1000 4000

Each size runs in its own process so peak RSS (ru_maxrss) belongs to that size alone. Reported:
catalog build, compile and serialise seconds, peak RSS above the post-import baseline, and the
ratios between the largest and smallest size (linear memory => memory ratio ~ size ratio).
"catalog MB" is the resident size after building the catalog (the planner's input).
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

COLUMNS = 20
SCHEMAS = 10
TYPES = (("BIGINT", "integer"), ("VARCHAR(64)", "string"), ("DOUBLE PRECISION", "float"),
         ("TIMESTAMP", "temporal"), ("NUMERIC(12, 2)", "decimal"))


def build(n_tables: int):
    """Config (two warehouses: pattern, regex, schema selections, excludes, a dependency) and catalog."""
    from baselinr.config import parse_config
    from baselinr.connectors.catalog import Catalog, ColumnInfo, TableInfo

    config = parse_config({
        "sources": {"pg": {"type": "postgres", "host": "db", "password": "x"},
                    "snow": {"type": "snowflake", "host": "acct", "database": "DB", "schema": "S0"}},
        "profiling": {"tables": [
            {"source": "pg", "table": "dim_0", "schema": "s0"},
            {"source": "pg", "pattern": "fact_*", "schema": "s0", "depends_on": ["dim_0"], "exclude_columns": ["c1*"]},
            *({"source": "pg", "select_schema": True, "schema": f"s{i}", "exclude_patterns": ["tmp_*"]}
              for i in range(SCHEMAS // 2)),
            *({"source": "snow", "pattern": "T_[0-9]+", "pattern_type": "regex", "schema": f"S{i}"}
              for i in range(SCHEMAS // 2)),
        ]},
        "execution": {"max_workers": 2, "batch_size": 50},
    })
    tables = []
    for i in range(n_tables):
        half = i % 2
        warehouse, schema = ("pg", f"s{i % SCHEMAS // 2}") if half == 0 else ("snow", f"S{i % SCHEMAS // 2}")
        name = (f"fact_{i}" if i % 3 else f"dim_{i}") if half == 0 else f"T_{i}"
        columns = tuple(ColumnInfo(name=f"c{j}", type=TYPES[j % 5][0], category=TYPES[j % 5][1])
                        for j in range(COLUMNS))
        tables.append(TableInfo(warehouse=warehouse, schema=schema, name=name, columns=columns,
                                estimated_rows=(i * 7919) % 1_000_003))
    return config, Catalog(tables=tables, warehouse_types={"pg": "postgres", "snow": "snowflake"})


def measure(n_tables: int) -> dict[str, float]:
    import planner

    base_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    t0 = time.perf_counter()
    config, catalog = build(n_tables)
    t1 = time.perf_counter()
    catalog_kb = _current_rss_kb()
    plan = planner.compile(config, catalog)
    t2 = time.perf_counter()
    text = planner.dumps_plan(plan)
    t3 = time.perf_counter()
    peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {"tables": n_tables, "tasks": len(plan.tasks), "batches": len(plan.batches),
            "build_s": t1 - t0, "compile_s": t2 - t1, "dumps_s": t3 - t2, "plan_mb": len(text) / 1e6,
            "catalog_mb": (catalog_kb - base_kb) / 1024, "peak_mb": (peak_kb - base_kb) / 1024}


def _current_rss_kb() -> int:
    """Resident set size now (Linux /proc), to tell the catalog's share of the peak."""
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * resource.getpagesize() // 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[25_000, 100_000])
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(measure(args.child)))
        return
    rows = []
    for size in args.sizes:
        out = subprocess.run([sys.executable, __file__, "--child", str(size)], check=True, capture_output=True,
                             text=True).stdout
        rows.append(json.loads(out))
    print(f"{'tables':>8} {'tasks':>8} {'batches':>7} {'build s':>8} {'compile s':>9} {'dumps s':>8} "
          f"{'plan MB':>8} {'catalog MB':>10} {'peak MB':>8}")
    for r in rows:
        print(f"{r['tables']:>8} {r['tasks']:>8} {r['batches']:>7} {r['build_s']:>8.2f} {r['compile_s']:>9.2f} "
              f"{r['dumps_s']:>8.2f} {r['plan_mb']:>8.1f} {r['catalog_mb']:>10.0f} {r['peak_mb']:>8.0f}")
    small, large = rows[0], rows[-1]
    size_ratio = large["tables"] / small["tables"]
    print(f"size x{size_ratio:.1f}: compile time x{large['compile_s'] / small['compile_s']:.2f}, "
          f"compile+dumps x{(large['compile_s'] + large['dumps_s']) / (small['compile_s'] + small['dumps_s']):.2f}, "
          f"peak memory x{large['peak_mb'] / small['peak_mb']:.2f}, "
          f"peak above the catalog x{(large['peak_mb'] - large['catalog_mb']) / (small['peak_mb'] - small['catalog_mb']):.2f}")


if __name__ == "__main__":
    main()
