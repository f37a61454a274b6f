"""planner.diff: what a reviewer sees after a config edit or a warehouse change, and after a
re-estimate alone (ANALYZE on the real PostgreSQL server), which is shown but is not a change."""

from __future__ import annotations

import json
from pathlib import Path

import yaml
from click.testing import CliRunner, Result
from sqlalchemy import column, create_engine, func, insert, select, table as sa_table, text

import planner
from baselinr.cli import main
from baselinr.connectors.catalog import Catalog
from tests.test_planner_fixtures import cols, single_catalog, single_config, table


def test_same_plan_has_no_changes() -> None:
    plan = planner.compile(single_config([{"pattern": "*"}]), single_catalog(("a", 1), ("b", 2)))
    result = planner.diff(plan, plan)
    assert not result.has_changes
    assert planner.render_diff_text(result) == "no changes\n"
    assert json.loads(planner.dumps_diff(result))["has_changes"] is False


def test_config_edit_shows_added_removed_changed_and_caps() -> None:
    old = planner.compile(single_config([{"pattern": "*", "exclude_patterns": ["c"]}]),
                          single_catalog(("a", 10), ("b", 20), ("c", 5)))
    catalog = Catalog(tables=[table("sqlite", "main", "a", cols("id INTEGER", "name TEXT", "note TEXT"), 10),
                              table("sqlite", "main", "b", cols("id BIGINT", "name TEXT"), 20),
                              table("sqlite", "main", "c", cols("id INTEGER", "name TEXT"), 5)])
    new = planner.compile(single_config([{"pattern": "*", "exclude_patterns": ["b"]},
                                         {"table": "a", "histogram_bins": 20, "exclude_columns": ["name"]}],
                                        max_workers=2, warehouse_limits={"sqlite": 2}), catalog)
    result = planner.diff(old, new)
    assert (result.added, result.removed) == (("sqlite.main.c",), ("sqlite.main.b",))
    [changed] = result.changed
    assert changed.id == "sqlite.main.a"
    # a stays in batch sqlite.L0.b1 (old: [b, a]; new: [a, c]), so no batch change
    assert [c.field for c in changed.changes] == ["columns", "fingerprint", "histogram_bins", "selection"]
    assert [c.field for c in result.warehouses_changed[0].changes] == ["cap", "limit"]
    assert planner.render_diff_text(result) == (
        "tasks: 1 added, 1 removed, 1 changed\n"
        "+ sqlite.main.c\n"
        "- sqlite.main.b\n"
        "~ sqlite.main.a\n"
        "    columns: +note -name\n"
        f"    fingerprint: {old.task('sqlite.main.a').fingerprint} -> {new.task('sqlite.main.a').fingerprint}\n"
        "    histogram_bins: 10 -> 20\n"
        "    selection: profiling.tables[0] pattern '*' (glob) in main -> profiling.tables[1] table 'main.a'\n"
        "~ warehouse sqlite\n"
        "    cap: 1 -> 2\n"
        "    limit: 1 -> 2\n"
        "~ execution.max_workers: 1 -> 2\n")


def test_batch_moves_are_changes() -> None:
    # old: b (20 rows) and a (10) share batch 1; new: a grew, so a comes first, and batch_size 1 splits them
    old = planner.compile(single_config([{"pattern": "*"}], batch_size=2), single_catalog(("a", 10), ("b", 20)))
    new = planner.compile(single_config([{"pattern": "*"}], batch_size=1), single_catalog(("a", 30), ("b", 20)))
    result = planner.diff(old, new)
    by_id = {c.id: {f.field: (f.old, f.new) for f in c.changes} for c in result.changed}
    assert by_id == {"sqlite.main.b": {"batch": ("sqlite.L0.b1", "sqlite.L0.b2")}}
    assert [(r.id, r.old, r.new) for r in result.reestimated] == [("sqlite.main.a", 10, 30)]
    assert {f.field: (f.old, f.new) for f in result.warehouses_changed[0].changes} == {"batches": (1, 2)}
    assert {f.field: (f.old, f.new) for f in result.settings} == {"execution.batch_size": (2, 1)}


def test_retyped_column_and_json_form() -> None:
    old = planner.compile(single_config([{"table": "a"}]), single_catalog(("a", 1)))
    new = planner.compile(single_config([{"table": "a"}]),
                          Catalog(tables=[table("sqlite", "main", "a", cols("id BIGINT", "name TEXT"), 1)]))
    result = planner.diff(old, new)
    text = planner.render_diff_text(result)
    assert "    columns: ~id INTEGER -> BIGINT\n" in text
    data = json.loads(planner.dumps_diff(result))
    assert data["has_changes"] is True
    change = data["changed"][0]["changes"][0]
    assert change["field"] == "columns"
    assert [c["type"] for c in change["old"]] == ["INTEGER", "TEXT"] and [c["type"] for c in change["new"]] == ["BIGINT", "TEXT"]


def test_a_re_estimate_alone_is_shown_but_is_no_change() -> None:
    old = planner.compile(single_config([{"pattern": "*"}]), single_catalog(("a", 10), ("b", 2000), ("c", None)))
    new = planner.compile(single_config([{"pattern": "*"}]), single_catalog(("a", 1500), ("b", 2000), ("c", 7)))
    assert [t.id for t in old.tasks] == [t.id for t in new.tasks]  # b, a, c either way (unknown sizes last)
    result = planner.diff(old, new)
    assert not result.has_changes
    assert planner.render_diff_text(result) == ("no changes\n"
                                                "re-estimated: 2 task(s), row estimates only (not a change)\n"
                                                "  sqlite.main.a: 10 -> 1,500 rows\n"
                                                "  sqlite.main.c: unknown -> 7 rows\n")
    data = json.loads(planner.dumps_diff(result))
    assert data["has_changes"] is False
    assert data["reestimated"] == [{"id": "sqlite.main.a", "new": 1500, "old": 10},
                                   {"id": "sqlite.main.c", "new": 7, "old": None}]


def cli(*args: str) -> Result:
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def test_plan_compare_after_analyze_on_postgres(tmp_path: Path, pg_db: dict, pg_server) -> None:
    """ANALYZE alone: exit 0 with the re-estimate listed; when it moves a task to another batch: exit 1."""
    engine = create_engine(pg_server.url(pg_db["database"]))

    def grow(name: str, rows: int) -> int:
        """Insert rows, ANALYZE, and return the table's row count."""
        t = sa_table(name, column("id"))
        with engine.begin() as conn:
            conn.execute(insert(t).from_select(["id"], select(func.generate_series(1, rows))))
            conn.execute(text(f"ANALYZE {name}"))
            return conn.execute(select(func.count()).select_from(t)).scalar_one()

    for name, rows in {"a": 100, "b": 300, "c": 200}.items():
        with engine.begin() as conn:
            conn.execute(text(f"CREATE TABLE {name} (id integer)"))
        assert grow(name, rows) == rows
    config = tmp_path / "pg.yml"
    config.write_text(yaml.safe_dump({"sources": {"pg": pg_db}, "execution": {"batch_size": 2},
                                      "profiling": {"tables": [{"select_schema": True, "schema": "public"}]}}))

    first = tmp_path / "old.json"
    assert cli("plan", "-c", str(config), "-o", str(first)).exit_code == 0
    old = planner.load_plan(first)
    assert [b.tasks for b in old.batches] == [("pg.public.b", "pg.public.c"), ("pg.public.a",)]

    a_rows = grow("a", 50)
    same = cli("plan", "-c", str(config), "--compare", str(first))
    assert same.exit_code == 0, same.stdout + same.stderr
    assert same.stdout == ("no changes\n"
                           "re-estimated: 1 task(s), row estimates only (not a change)\n"
                           f"  pg.public.a: 100 -> {a_rows} rows\n")
    second = tmp_path / "new.json"
    assert cli("plan", "-c", str(config), "-o", str(second)).exit_code == 0
    assert [t.digest for t in planner.load_plan(second).tasks] == [t.digest for t in old.tasks]
    as_json = cli("diff", str(first), str(second), "--json")
    assert as_json.exit_code == 0
    assert json.loads(as_json.stdout)["reestimated"] == [{"id": "pg.public.a", "old": 100, "new": a_rows}]

    a_rows = grow("a", 400)  # now the largest: a and c swap batches
    moved = cli("plan", "-c", str(config), "--compare", str(first))
    assert moved.exit_code == 1
    assert moved.stdout == ("tasks: 0 added, 0 removed, 2 changed\n"
                            "~ pg.public.a\n"
                            "    batch: pg.L0.b2 -> pg.L0.b1\n"
                            "~ pg.public.c\n"
                            "    batch: pg.L0.b1 -> pg.L0.b2\n"
                            "re-estimated: 1 task(s), row estimates only (not a change)\n"
                            f"  pg.public.a: 100 -> {a_rows} rows\n")
    engine.dispose()
