"""The step-level execution behind each Dagster asset, on a small real SQLite warehouse: the run's
status settled from its tasks, runs held by a Baselinr runner or made from another plan refused,
no metrics server per step; and how Dagster retries treat each kind of failure."""

from __future__ import annotations

import socket
import sqlite3
from pathlib import Path

import dagster as dg
import pytest

import planner
from baselinr.config import load_config
from baselinr.errors import PlanError, StateError
from baselinr.integrations.dagster import RUN_ID_TAG, build_definitions
from baselinr.integrations.dagster.execution import PlanTarget, ensure_run, settle_run_status
from baselinr.runner import RunStatus, StateStore, TaskOutcome, TaskStatus
from baselinr.runner.lease import Lease
from baselinr.runner.state import utcnow
from baselinr.storage import open_storage
from tests.test_runner_fixtures import cli, compile_plan, config_data, make_config, write_config


@pytest.fixture
def setup(tmp_path: Path) -> tuple[planner.Plan, Path]:
    """A plan over two tiny tables (b depends on a) and its config; storage in tmp_path."""
    db = sqlite3.connect(tmp_path / "wh.db")
    db.executescript("CREATE TABLE a (x INTEGER); INSERT INTO a VALUES (1), (2);"
                     "CREATE TABLE b (y TEXT); INSERT INTO b VALUES ('p'), (NULL);")
    db.close()
    data = config_data(tmp_path, {"wh": {"type": "sqlite", "filepath": str(tmp_path / "wh.db")}},
                       [{"table": "a", "source": "wh"}, {"table": "b", "source": "wh", "depends_on": ["main.a"]}])
    return compile_plan(make_config(data)), write_config(tmp_path, data)


def store_for(config_path: Path) -> StateStore:
    return StateStore(open_storage(load_config(config_path).storage))


def test_run_status_is_settled_from_the_task_states(setup) -> None:
    plan, config_path = setup
    store = store_for(config_path)
    ensure_run(store, plan, "r1")
    assert settle_run_status(store, "r1") == RunStatus.FAILED  # nothing ran yet: resumable
    store.mark_running("r1", "wh.main.a")
    assert settle_run_status(store, "r1") == RunStatus.RUNNING
    now = utcnow()
    store.mark_failed("r1", TaskOutcome(task_id="wh.main.a", succeeded=False, attempts=1, started_at=now,
                                        finished_at=now, error_type="X", error_message="boom"))
    assert settle_run_status(store, "r1") == RunStatus.FAILED
    assert store.run("r1").finished_at is not None
    result = PlanTarget(plan, load_config(config_path)).run_tasks("r1", ["wh.main.a", "wh.main.b"])
    assert {r.status for r in result.tasks.values()} == {TaskStatus.SUCCEEDED}
    assert (result.profiles["wh.main.a"].row_count, result.profiles["wh.main.b"].row_count) == (2, 2)
    assert store.run("r1").status == RunStatus.SUCCEEDED


def test_a_run_held_by_a_baselinr_runner_is_refused(setup) -> None:
    plan, config_path = setup
    store = store_for(config_path)
    ensure_run(store, plan, "held")
    with Lease(store, "held"):
        with pytest.raises(StateError, match=r"^run held is being executed by a baselinr runner \(host .+, pid \d+\); "
                                             r"wait for it to finish$"):
            PlanTarget(plan, load_config(config_path)).run_tasks("held", ["wh.main.a"])
    assert {r.status for r in store.tasks("held")} == {TaskStatus.PENDING}


def test_resume_refuses_a_dagster_run_with_a_task_running_and_resumes_it_once_none_is(setup) -> None:
    plan, config_path = setup
    store = store_for(config_path)
    ensure_run(store, plan, "dg")
    store.mark_running("dg", "wh.main.a")  # a Dagster step is profiling it now
    refused = cli("resume", "dg", "-c", str(config_path), cwd=config_path.parent)
    assert refused.returncode == 2
    assert refused.stderr == ("error: run dg is driven by an orchestrator (Dagster) and 1 task(s) are running in it "
                              "(e.g. wh.main.a); re-execute it from the orchestrator instead\n")
    assert {r.task_id: r.status for r in store.tasks("dg")} == {"wh.main.a": "running", "wh.main.b": "pending"}
    assert store.run("dg").lease_owner is None  # the refused resume left no claim behind
    now = utcnow()
    store.mark_failed("dg", TaskOutcome(task_id="wh.main.a", succeeded=False, attempts=1, started_at=now,
                                        finished_at=now, error_type="X", error_message="boom"))
    resumed = cli("resume", "dg", "-c", str(config_path), cwd=config_path.parent)
    assert resumed.returncode == 0, resumed.stderr
    assert {r.status for r in store.tasks("dg")} == {TaskStatus.SUCCEEDED}


def test_a_run_of_another_plan_is_refused(setup, tmp_path: Path) -> None:
    plan, config_path = setup
    store = store_for(config_path)
    ensure_run(store, plan, "r2")
    other = compile_plan(make_config(config_data(tmp_path, {"wh": {"type": "sqlite", "filepath": str(tmp_path / "wh.db")}},
                                                 [{"table": "a", "source": "wh"}])))
    with pytest.raises(PlanError, match=r"^run r2 was started with another plan; launch a new run \(not a "
                                        r"re-execution\) to profile this plan$"):
        PlanTarget(other, load_config(config_path)).run_tasks("r2", ["wh.main.a"])


def test_steps_never_bind_the_metrics_port(setup, tmp_path: Path) -> None:
    plan, _ = setup
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        data = config_data(tmp_path, {"wh": {"type": "sqlite", "filepath": str(tmp_path / "wh.db")}},
                           [{"table": "a", "source": "wh"}], monitoring={"enable_metrics": True, "port": port})
        config_path = write_config(tmp_path, data)
        result = PlanTarget(plan, load_config(config_path)).run_tasks("r3", ["wh.main.a"])
    assert result.tasks["wh.main.a"].status == TaskStatus.SUCCEEDED


def test_dagster_retries_a_failed_table_but_never_bad_input(setup, tmp_path: Path) -> None:
    plan, config_path = setup
    # A compiled Plan object (not yet sealed) is accepted like a plan file.
    defs = build_definitions(plan, config_path, retry_policy=dg.RetryPolicy(max_retries=1))
    a = next(x for x in defs.assets if x.key.path[-1] == "a")

    def retries(result: dg.ExecuteInProcessResult) -> int:
        return sum(e.event_type == dg.DagsterEventType.STEP_UP_FOR_RETRY for e in result.all_events)

    warehouse = sqlite3.connect(tmp_path / "wh.db")
    warehouse.execute("ALTER TABLE a RENAME TO a_away")  # the table is gone: a task failure
    warehouse.commit()
    failed = dg.materialize([a], raise_on_error=False, tags={RUN_ID_TAG: "t1"})
    assert not failed.success and retries(failed) == 1
    warehouse.execute("ALTER TABLE a_away RENAME TO a")
    warehouse.commit()
    warehouse.close()

    store = store_for(config_path)
    with Lease(store, "t1"):
        held = dg.materialize([a], raise_on_error=False, tags={RUN_ID_TAG: "t1"})
    assert not held.success and retries(held) == 0
    assert dg.materialize([a], tags={RUN_ID_TAG: "t1"}).success
    assert {r.task_id: r.status for r in store.tasks("t1")}["wh.main.a"] == TaskStatus.SUCCEEDED
