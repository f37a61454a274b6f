"""planner.compile over hand-built catalogs: expansion, options, dependencies, batches, caps,
determinism and secrets. Expected values are worked out by hand from the fixtures."""

from __future__ import annotations

import hashlib
import json
import random

import pytest

import planner
from planner.compiler import seal
from baselinr.config import parse_config
from baselinr.connectors.catalog import Catalog
from baselinr.errors import PlanError
from tests.test_planner_fixtures import (LITERAL_SECRETS, multi_catalog, multi_config, single_catalog,
                                         single_config)


@pytest.fixture
def plan(monkeypatch: pytest.MonkeyPatch) -> planner.Plan:
    monkeypatch.delenv("PLANNER_TEST_PGHOST", raising=False)
    monkeypatch.delenv("PLANNER_TEST_SNOW_PW", raising=False)
    return planner.compile(multi_config(), multi_catalog())


def test_expansion_picks_the_most_specific_selection(plan: planner.Plan) -> None:
    by_id = {t.id: t for t in plan.tasks}
    assert sorted(by_id) == sorted([
        "lake.main.flights", "lake.main.airlines", "lake.main.airports", "lake.main.weather", "lake.main.planes",
        "dwh.public.fact_orders", "dwh.public.fact_returns", "dwh.public.dim_customer", "snow.RAW.V_EVENTS"])
    # explicit beats pattern beats schema
    assert (by_id["lake.main.flights"].selection.index, by_id["lake.main.flights"].selection.kind) == (0, "table")
    assert by_id["lake.main.airlines"].selection.kind == "pattern"
    assert by_id["lake.main.weather"].selection.description == "schema main"
    assert by_id["lake.main.airports"].selection.description == "pattern 'air*' (glob) in main"
    assert by_id["dwh.public.dim_customer"].selection.description == "table 'public.dim_customer'"


def test_selection_options_override_profiling_defaults(plan: planner.Plan) -> None:
    flights, airlines, weather = (plan.task(f"lake.main.{n}") for n in ("flights", "airlines", "weather"))
    assert [c.name for c in flights.columns] == ["year", "carrier", "dep_delay"]  # time_* excluded
    assert (airlines.histogram_bins, weather.histogram_bins) == (20, 10)
    dim = plan.task("dwh.public.dim_customer")
    assert (dim.metrics, dim.compute_histograms) == (("count", "distinct_count"), False)
    assert weather.metrics == ("count", "null_count", "distinct_count", "min", "max", "mean")
    orders, returns = plan.task("dwh.public.fact_orders"), plan.task("dwh.public.fact_returns")
    assert [c.name for c in orders.columns] == ["order_id", "customer_id", "amount"]
    assert [c.name for c in returns.columns] == ["return_id", "order_id"]
    # the fingerprint covers all the table's columns, not only the profiled ones
    assert orders.fingerprint == multi_catalog().tables[6].fingerprint
    assert orders.estimated_rows == 5_000_000 and plan.task("lake.main.planes").estimated_rows is None


def test_no_match_is_a_warning(plan: planner.Plan) -> None:
    assert plan.warnings == ("profiling.tables[5]: pattern 'tmp_*' (glob) in public matched no table in warehouse 'dwh'",
                             "warehouse 'lake' is SQLite, which serialises access: it runs one task at a time "
                             "although max_workers is 4 (set execution.warehouse_limits.lake to override)")


def test_dependencies_levels_batches_and_order(plan: planner.Plan) -> None:
    assert plan.task("lake.main.flights").depends_on == ("lake.main.airlines",)
    assert plan.task("dwh.public.fact_orders").depends_on == ("dwh.public.dim_customer",)
    assert [(b.id, b.level, b.tasks) for b in plan.batches] == [
        ("dwh.L0.b1", 0, ("dwh.public.dim_customer",)),
        ("lake.L0.b1", 0, ("lake.main.weather", "lake.main.airports")),   # largest first
        ("lake.L0.b2", 0, ("lake.main.airlines", "lake.main.planes")),    # unknown size last
        ("snow.L0.b1", 0, ("snow.RAW.V_EVENTS",)),
        ("dwh.L1.b1", 1, ("dwh.public.fact_orders", "dwh.public.fact_returns")),
        ("lake.L1.b1", 1, ("lake.main.flights",)),
    ]
    assert [t.id for t in plan.tasks] == [tid for b in plan.batches for tid in b.tasks]


def test_caps_summary_and_settings(plan: planner.Plan) -> None:
    assert {n: (w.type, w.cap) for n, w in plan.warehouses.items()} == {
        "dwh": ("postgres", 3), "lake": ("sqlite", 1), "snow": ("snowflake", 2)}
    assert {n: (s.tables, s.columns, s.metrics) for n, s in plan.summary.items()} == {
        "lake": (5, 13, 78), "dwh": (3, 8, 36), "snow": (1, 2, 12)}
    assert (plan.execution.max_workers, plan.execution.batch_size, plan.environment) == (4, 2, "ci")


def test_connections_keep_references_and_drop_secrets(plan: planner.Plan) -> None:
    assert plan.warehouses["dwh"].connection == {
        "type": "postgres", "host": "${PLANNER_TEST_PGHOST:-db.internal}", "port": 5432, "database": "analytics",
        "username": "baselinr", "schema": "public", "extra_params": {"sslmode": "require"}}
    assert plan.warehouses["lake"].connection == {"type": "sqlite", "filepath": "data/lake.db"}


def test_literal_secrets_never_reach_the_plan_bytes(plan: planner.Plan) -> None:
    text = planner.dumps_plan(plan)
    for secret in LITERAL_SECRETS:
        assert secret not in text
    assert "password" not in text and "api_key" not in text


def test_config_digest_ignores_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    base = planner.compile(multi_config(), multi_catalog())
    sources = multi_config().model_dump(by_alias=True, exclude_unset=True, mode="python")["sources"]
    sources = {n: {**c, "password": c["password"].get_secret_value() + "-rotated"} if c.get("password") else c
               for n, c in sources.items()}
    rotated = planner.compile(multi_config(sources=sources), multi_catalog())
    assert rotated.config_digest == base.config_digest
    other = planner.compile(multi_config(environment="prod"), multi_catalog())
    assert other.config_digest != base.config_digest


def sha(value: object) -> str:
    """A digest as PLAN_FORMAT.md defines it, computed independently of the planner."""
    text = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def test_digests_are_sha256_of_compact_sorted_json(plan: planner.Plan) -> None:
    text = planner.dumps_plan(plan)
    data = json.loads(text)
    assert text == json.dumps(data, sort_keys=True, indent=2, ensure_ascii=False) + "\n"
    for task in data["tasks"]:
        assert task["digest"] == sha({k: v for k, v in task.items() if k not in ("digest", "estimated_rows")})
    assert data["plan_digest"] == sha({k: v for k, v in data.items() if k != "plan_digest"})


def test_a_re_estimate_keeps_task_digests_and_changes_the_plan_digest() -> None:
    catalog = multi_catalog()
    grown = catalog.model_copy(update={"tables": [t.model_copy(update={"estimated_rows": (t.estimated_rows or 0) + 7})
                                                  for t in catalog.tables]})
    before, after = planner.compile(multi_config(), catalog), planner.compile(multi_config(), grown)
    assert [t.estimated_rows for t in before.tasks] != [t.estimated_rows for t in after.tasks]
    assert [(t.id, t.digest) for t in before.tasks] == [(t.id, t.digest) for t in after.tasks]
    assert before.plan_digest != after.plan_digest
    data = json.loads(planner.dumps_plan(before))
    data["tasks"][0]["estimated_rows"] += 1  # still covered by the plan digest
    with pytest.raises(PlanError, match="plan digest mismatch"):
        planner.load_plan(json.dumps(data))


def test_plans_with_task_digests_over_the_estimate_still_load() -> None:
    """Plans written before estimated_rows left the task digest (e.g. a run to resume) are accepted."""
    data = json.loads(planner.dumps_plan(planner.compile(multi_config(), multi_catalog())))
    for task in data["tasks"]:
        task["digest"] = sha({k: v for k, v in task.items() if k != "digest"})
    data["plan_digest"] = sha({k: v for k, v in data.items() if k != "plan_digest"})
    assert any(t["estimated_rows"] is not None for t in data["tasks"])
    assert planner.load_plan(json.dumps(data)).tasks[0].digest == data["tasks"][0]["digest"]


def test_byte_identical_across_runs_and_catalog_orders() -> None:
    first = planner.dumps_plan(planner.compile(multi_config(), multi_catalog()))
    assert planner.dumps_plan(planner.compile(multi_config(), multi_catalog())) == first
    for seed in range(5):
        tables = list(multi_catalog().tables)
        random.Random(seed).shuffle(tables)
        shuffled = Catalog(tables=tables, warehouse_types=dict(reversed(multi_catalog().warehouse_types.items())))
        assert planner.dumps_plan(planner.compile(multi_config(), shuffled)) == first


def test_missing_explicit_table_names_it_with_a_hint() -> None:
    config = single_config([{"table": "fligths"}])
    with pytest.raises(PlanError) as err:
        planner.compile(config, single_catalog(("flights", 1), ("planes", 2)))
    assert str(err.value) == ("profiling.tables[0]: table 'main.fligths' not found in warehouse 'sqlite' "
                              "(did you mean 'main.flights'?)")


def test_dependency_cycle_prints_the_whole_cycle() -> None:
    config = single_config([{"table": "a", "depends_on": ["b"]}, {"table": "b", "depends_on": ["c"]},
                            {"table": "c", "depends_on": ["main.a"]}])
    with pytest.raises(PlanError) as err:
        planner.compile(config, single_catalog(("a", 1), ("b", 1), ("c", 1)))
    assert str(err.value) == ("dependency cycle: sqlite.main.a -> sqlite.main.b -> sqlite.main.c -> sqlite.main.a "
                              "(each task depends on the next)")


def test_explicit_self_dependency_is_a_cycle_but_a_pattern_may_cover_its_dependency() -> None:
    with pytest.raises(PlanError, match=r"dependency cycle: sqlite.main.a -> sqlite.main.a "):
        planner.compile(single_config([{"table": "a", "depends_on": ["a"]}]), single_catalog(("a", 1)))
    plan = planner.compile(single_config([{"pattern": "*", "depends_on": ["a"]}]), single_catalog(("a", 1), ("b", 1)))
    assert [(t.id, t.depends_on) for t in plan.tasks] == [("sqlite.main.a", ()), ("sqlite.main.b", ("sqlite.main.a",))]


def test_unknown_dependency_is_an_error_with_a_hint() -> None:
    config = single_config([{"table": "a", "depends_on": ["bb"]}, {"table": "b"}])
    with pytest.raises(PlanError) as err:
        planner.compile(config, single_catalog(("a", 1), ("b", 1), ("bb", 1)))
    assert str(err.value) == ("profiling.tables[0].depends_on: 'bb' (sqlite.main.bb) is not a table of this plan "
                              "(did you mean sqlite.main.b?)")
    with pytest.raises(PlanError, match=r"'x\.y\.z\.w' is not 'table', 'schema.table' or 'warehouse.schema.table'"):
        planner.compile(single_config([{"table": "a", "depends_on": ["x.y.z.w"]}]), single_catalog(("a", 1)))


def test_regex_is_a_full_match_and_excludes_use_the_pattern_type() -> None:
    config = single_config([{"pattern": "t[0-9]+", "pattern_type": "regex", "exclude_patterns": ["t1.*"]}])
    plan = planner.compile(config, single_catalog(("t1", 1), ("t2", 1), ("t12", 1), ("t3x", 1), ("xt3", 1)))
    assert [t.table for t in plan.tasks] == ["t2"]


def test_column_glob_of_an_explicit_table_that_matches_nothing_warns() -> None:
    plan = planner.compile(single_config([{"table": "a", "columns": ["id", "nope*"]}]), single_catalog(("a", 1)))
    assert [c.name for c in plan.tasks[0].columns] == ["id"]
    assert plan.warnings == ("profiling.tables[0].columns: 'nope*' matched no column of sqlite.main.a",)


@pytest.mark.parametrize("execution, cap", [
    ({}, 1),                                                   # max_workers 1 caps everything
    ({"max_workers": 4}, 1),                                   # sqlite default
    ({"max_workers": 4, "warehouse_limits": {"sqlite": 3}}, 3),  # explicit (by name == type here) honoured
    ({"max_workers": 2, "warehouse_limits": {"sqlite": 6}}, 2),  # never above max_workers
])
def test_sqlite_caps(execution: dict, cap: int) -> None:
    plan = planner.compile(single_config([{"table": "a"}], **execution), single_catalog(("a", 1)))
    assert plan.warehouses["sqlite"].cap == cap


def test_caps_by_name_then_type_then_default() -> None:
    from baselinr.config import parse_config

    def caps(limits: dict) -> dict[str, int]:
        config = parse_config({"sources": {"pg1": {"type": "postgres", "host": "a"}, "pg2": {"type": "postgres", "host": "b"},
                                           "my": {"type": "mysql", "host": "c", "database": "d"},
                                           "dk": {"type": "duckdb", "filepath": "x.duckdb"}},
                               "execution": {"max_workers": 6, "warehouse_limits": limits}})
        return {n: w.cap for n, w in planner.compile(config, Catalog()).warehouses.items()}

    assert caps({}) == {"dk": 6, "my": 6, "pg1": 6, "pg2": 6}        # defaults 8 (pg, mysql) capped at 6
    assert caps({"pg1": 2, "postgres": 3, "mysql": 1}) == {"dk": 6, "my": 1, "pg1": 2, "pg2": 3}


def test_sqlite_parallelism_is_a_plan_warning_unless_a_limit_is_explicit() -> None:
    implicit = planner.compile(single_config([{"table": "a"}], max_workers=2), single_catalog(("a", 1)))
    explicit = planner.compile(single_config([{"table": "a"}], max_workers=2, warehouse_limits={"sqlite": 2}),
                               single_catalog(("a", 1)))
    assert implicit.warnings == ("warehouse 'sqlite' is SQLite, which serialises access: it runs one task at a time "
                                 "although max_workers is 2 (set execution.warehouse_limits.sqlite to override)",)
    assert (implicit.warehouses["sqlite"].cap, implicit.warehouses["sqlite"].limit) == (1, 1)
    assert explicit.warnings == () and (explicit.warehouses["sqlite"].cap, explicit.warehouses["sqlite"].limit) == (2, 2)


def test_limit_keeps_what_max_workers_caps() -> None:
    """postgres' built-in limit is 8 and duckdb has none of its own (64): the cap is min(limit, max_workers)."""
    config = parse_config({"sources": {"pg": {"type": "postgres", "host": "h"}, "duck": {"type": "duckdb", "filepath": "d"}},
                           "profiling": {"tables": []}, "execution": {"max_workers": 2}})
    plan = planner.compile(config, Catalog(tables=[], warehouse_types={"pg": "postgres", "duck": "duckdb"}))
    assert {n: (w.cap, w.limit) for n, w in plan.warehouses.items()} == {"duck": (2, 64), "pg": (2, 8)}
    old = json.loads(planner.dumps_plan(plan))  # a plan from before `limit` existed still loads: limit = cap
    for wh in old["warehouses"].values():
        del wh["limit"]
    old = planner.load_plan(planner.dumps_plan(seal(planner.Plan.model_validate(old))))
    assert {n: (w.limit, w.own_limit) for n, w in old.warehouses.items()} == {"duck": (None, 2), "pg": (None, 2)}
    assert "limit" not in planner.dumps_plan(old)


def test_empty_selection_list_warns() -> None:
    plan = planner.compile(single_config([]), single_catalog(("a", 1)))
    assert (plan.tasks, plan.batches, plan.warnings) == ((), (), ("profiling.tables is empty: the plan has no tasks",))
    assert planner.load_plan(planner.dumps_plan(plan)) == plan


def test_duplicate_catalog_entry_is_refused() -> None:
    with pytest.raises(PlanError, match=r"^catalog lists table sqlite.main.a twice$"):
        planner.compile(single_config([{"table": "a"}]), single_catalog(("a", 1), ("a", 2)))


def test_table_lookup_follows_copies(plan: planner.Plan) -> None:
    first = plan.tasks[0]
    assert plan.task(first.id) is first
    renamed = plan.model_copy(update={"tasks": (first.model_copy(update={"id": "x.y.z"}),)})
    assert renamed.task("x.y.z").table == first.table
    with pytest.raises(KeyError):
        renamed.task(first.id)
