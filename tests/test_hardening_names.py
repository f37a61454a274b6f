"""Hostile identifiers through `baselinr plan` + `baselinr apply` on SQLite and PostgreSQL.

Every table and column name below must be profiled as itself and never run as SQL: a table
named ``x"; DROP TABLE victim; --`` must leave ``victim`` alone.
"""

from __future__ import annotations

import statistics
from pathlib import Path

import pytest
from sqlalchemy import Column, Integer, MetaData, String, Table, create_engine, func, insert, inspect, select
from sqlalchemy.engine import Engine

from tests.test_hardening_fixtures import only_run_id, plan_and_apply, stored, task_states
from tests.test_runner_fixtures import config_data, pg_url

TABLES = ["with space", "dot.ted", 'dq"uote', "sq'uote", "back`tick", "semi;colon", "dash--dash", "select",
          "MixedCase", "ünïcödé_表", 'x"; DROP TABLE victim; --', "x'; DROP TABLE victim; --"]
COLUMNS = ["order", "Col Space", 'c"q', "c'q", "c;--", "ü列", "from"]
LONG_PG = "l" * 60 + "éx"  # 63 bytes: PostgreSQL's identifier limit (NAMEDATALEN - 1)
LONG_SQLITE = "long_" * 60


def values(k: int) -> list[int]:
    """Column values of table ``k``: different per table, so a mixed-up table shows."""
    return [k * 100 + i * i for i in range(5)]


def build(engine: Engine, names: list[str]) -> None:
    md = MetaData()
    victim = Table("victim", md, Column("id", Integer))
    tables = [Table(name, md, *(Column(c, Integer) for c in COLUMNS), Column("label", String(20))) for name in names]
    md.create_all(engine)
    with engine.begin() as conn:
        conn.execute(insert(victim), [{"id": 1}])
        for k, table in enumerate(tables):
            conn.execute(insert(table), [{**{c: v + j for j, c in enumerate(COLUMNS)}, "label": "é" * (i + 1)}
                                         for i, v in enumerate(values(k))])


@pytest.fixture(params=["sqlite", "postgres"])
def warehouse(request, tmp_path) -> tuple[dict, Engine, list[str]]:
    if request.param == "sqlite":
        conn = {"type": "sqlite", "filepath": str(tmp_path / "hostile.db")}
        engine, names = create_engine(f"sqlite:///{conn['filepath']}"), [*TABLES, LONG_SQLITE]
    else:
        conn = request.getfixturevalue("pg_db")
        engine, names = create_engine(pg_url(conn)), [*TABLES, LONG_PG]
    build(engine, names)
    yield conn, engine, names
    engine.dispose()


def test_hostile_names_are_profiled_as_themselves_and_inject_nothing(tmp_path: Path, warehouse) -> None:
    conn, engine, names = warehouse
    assert len(names[-1].encode()) >= 63
    schema = "public" if conn["type"] == "postgres" else "main"
    data = config_data(tmp_path, {"wh": conn}, [{"select_schema": True, "schema": schema}])
    data["profiling"]["metrics"] = ["count", "distinct_count", "min", "max", "mean", "stddev", "max_length"]
    config, applied = plan_and_apply(tmp_path, data)
    assert applied.returncode == 0, applied.stderr
    run_id = only_run_id(config)
    assert set(task_states(config, run_id).values()) == {("succeeded", None)}

    results = stored(config, run_id)
    assert sorted(results) == sorted([*names, "victim"])
    for k, name in enumerate(names):
        assert results[name]["row_count"] == 5, name
        for j, col in enumerate(COLUMNS):
            expected = [v + j for v in values(k)]
            metrics = results[name]["columns"][col]
            assert (metrics["count"], metrics["distinct_count"]) == (5, 5), (name, col)
            assert (metrics["min"], metrics["max"]) == (min(expected), max(expected)), (name, col)
            assert float(metrics["mean"]) == pytest.approx(statistics.fmean(expected)), (name, col)
            assert float(metrics["stddev"]) == pytest.approx(statistics.stdev(expected)), (name, col)
        assert results[name]["columns"]["label"]["max_length"] == 5  # characters, not bytes
    assert "victim" in inspect(engine).get_table_names()
    victim = Table("victim", MetaData(), autoload_with=engine)
    with engine.connect() as c:
        assert c.execute(select(func.count()).select_from(victim)).scalar() == 1
