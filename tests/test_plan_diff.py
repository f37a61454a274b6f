"""planner.diff: what a reviewer sees after a config edit or a warehouse change."""

from __future__ import annotations

import json

import planner
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
    assert by_id == {"sqlite.main.a": {"estimated_rows": (10, 30)},
                     "sqlite.main.b": {"batch": ("sqlite.L0.b1", "sqlite.L0.b2")}}
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
