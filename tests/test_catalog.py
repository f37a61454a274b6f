"""Catalog reflection on real databases: objects that cannot be reflected are isolated."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import yaml
from click.testing import CliRunner

import planner
from baselinr.cli import main
from baselinr.config import ConnectionConfig
from baselinr.connectors import create_engine, inspect_schema

BROKEN = "warehouse 'lake': view main.broken left out: cannot read its columns: no such table: main.gone"


def make_broken_sqlite(path: Path) -> None:
    """Tables a, b, a good view, and a view over a table that was then dropped."""
    with sqlite3.connect(path) as conn:
        conn.executescript("""
            CREATE TABLE a (id INTEGER NOT NULL, name TEXT);
            CREATE TABLE b (x REAL);
            CREATE TABLE gone (y INTEGER);
            CREATE VIEW broken AS SELECT y FROM gone;
            CREATE VIEW good AS SELECT id FROM a;
            DROP TABLE gone;
        """)
    conn.close()


def test_a_broken_sqlite_view_is_left_out_with_a_warning(sqlite_path: Path) -> None:
    make_broken_sqlite(sqlite_path)
    engine = create_engine(ConnectionConfig(type="sqlite", filepath=str(sqlite_path)))
    warnings: list[str] = []
    tables = inspect_schema(engine, "lake", "main", warnings)
    assert [(t.name, t.kind, [c.name for c in t.columns]) for t in tables] == [
        ("a", "table", ["id", "name"]), ("b", "table", ["x"]), ("good", "view", ["id"])]
    assert warnings == [BROKEN]


def test_plan_cli_plans_the_rest_of_a_schema_with_a_broken_view(tmp_path: Path, sqlite_path: Path) -> None:
    make_broken_sqlite(sqlite_path)
    config = tmp_path / "cfg.yml"
    config.write_text(yaml.safe_dump({"sources": {"lake": {"type": "sqlite", "filepath": str(sqlite_path)}},
                                      "profiling": {"tables": [{"select_schema": True, "schema": "main"}]}}))
    result = CliRunner().invoke(main, ["plan", "-c", str(config)], catch_exceptions=False)
    assert result.exit_code == 0, result.stderr
    plan = planner.load_plan(result.stdout)
    assert [t.id for t in plan.tasks] == ["lake.main.a", "lake.main.b", "lake.main.good"]
    assert list(plan.warnings) == [BROKEN] == json.loads(result.stdout)["warnings"]
    assert f"warning: {BROKEN}\n" in result.stderr
