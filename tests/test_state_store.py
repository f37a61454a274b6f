"""State store and lease on SQLite and the real PostgreSQL server."""

from __future__ import annotations

import math
import os
import socket
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import func, select, update

from baselinr.config import ConnectionConfig, StorageConfig
from baselinr.errors import StateError
from baselinr.profiling.result import ColumnProfile, ProfilingResult
from baselinr.runner.lease import Lease
from baselinr.runner.outcome import RunStatus, TaskOutcome, TaskStatus
from baselinr.runner.state import StateStore, new_run_id
from baselinr.storage import open_storage
from planner.models import Plan

NOW = datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone.utc)


@pytest.fixture(params=["sqlite", "postgres"])
def store(request, tmp_path):
    if request.param == "sqlite":
        conn = ConnectionConfig(type="sqlite", filepath=str(tmp_path / "state.db"))
    else:
        conn = ConnectionConfig(**request.getfixturevalue("pg_db"))
    storage = open_storage(StorageConfig(connection=conn))
    yield StateStore(storage)
    storage.engine.dispose()


def tiny_plan(*names: str) -> Plan:
    task = {"warehouse": "w", "schema": "main", "table_kind": "table", "columns": [], "fingerprint": "f",
            "metrics": ["count"], "compute_histograms": False, "histogram_bins": 10,
            "selection": {"index": 0, "kind": "table", "description": "t"}}
    return Plan.model_validate({
        "baselinr_version": "0", "plan_digest": "d" * 64, "config_digest": "c", "environment": "test",
        "execution": {"max_workers": 1, "batch_size": 10, "queue_size": 100},
        "warehouses": {"w": {"type": "sqlite", "cap": 1, "connection": {"filepath": "x.db"}}},
        "batches": [], "summary": {},
        "tasks": [{**task, "id": f"w.main.{n}", "table": n, "digest": f"digest-{n}"} for n in names]})


def outcome(task: str, ok: bool, result: ProfilingResult | None = None, attempts: int = 1) -> TaskOutcome:
    return TaskOutcome(task_id=f"w.main.{task}", succeeded=ok, attempts=attempts, started_at=NOW,
                       finished_at=NOW + timedelta(seconds=2), result=result,
                       error_type=None if ok else "OperationalError", error_message=None if ok else "boom")


def result(table: str, mean: float) -> ProfilingResult:
    return ProfilingResult(warehouse="w", schema="main", table=table, row_count=3, profiled_at=NOW,
                           duration_seconds=1.0, columns=(ColumnProfile(name="x", type="INTEGER",
                                                                        metrics={"count": 3, "mean": mean}),))


def test_create_run_records_every_task_pending(store):
    run_id = new_run_id()
    store.create_run(tiny_plan("a", "b", "c"), "{}", run_id)
    rows = store.tasks(run_id)
    assert sorted((r.task_id, r.status, r.attempts, r.task_digest) for r in rows) == [
        ("w.main.a", TaskStatus.PENDING, 0, "digest-a"), ("w.main.b", TaskStatus.PENDING, 0, "digest-b"),
        ("w.main.c", TaskStatus.PENDING, 0, "digest-c")]
    assert store.run(run_id).status == RunStatus.RUNNING
    assert store.latest_unfinished().run_id == run_id


def test_success_writes_results_and_mark_together_attempts_accumulate(store):
    run_id = new_run_id()
    store.create_run(tiny_plan("a", "b"), "{}", run_id)
    store.mark_running(run_id, "w.main.a")
    store.mark_failed(run_id, outcome("a", False, attempts=3))
    store.mark_running(run_id, "w.main.a")
    store.mark_succeeded(run_id, outcome("a", True, result("a", 2.5)), "test")
    row = {r.task_id: r for r in store.tasks(run_id)}["w.main.a"]
    assert (row.status, row.attempts, row.duration_seconds, row.error_message) == (TaskStatus.SUCCEEDED, 4, 2.0, None)
    runs = store.storage.tables.runs
    with store.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(runs).where(runs.c.run_id == run_id)).scalar() == 1


def test_a_result_that_cannot_be_stored_leaves_neither_data_nor_mark(store):
    run_id = new_run_id()
    store.create_run(tiny_plan("a"), "{}", run_id)
    store.mark_running(run_id, "w.main.a")
    with pytest.raises(ValueError, match="non-finite"):
        store.mark_succeeded(run_id, outcome("a", True, result("a", math.nan)), "test")
    assert store.tasks(run_id)[0].status == TaskStatus.RUNNING
    res = store.storage.tables.results
    with store.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(res).where(res.c.run_id == run_id)).scalar() == 0


def test_skipped_and_cancelled_keep_their_reason(store):
    run_id = new_run_id()
    store.create_run(tiny_plan("a", "b"), "{}", run_id)
    store.mark_not_run(run_id, ["w.main.a"], TaskStatus.SKIPPED, {"w.main.a": "upstream w.main.x failed"})
    store.mark_not_run(run_id, ["w.main.b"], TaskStatus.CANCELLED, {"w.main.b": "interrupted (Ctrl-C)"})
    rows = {r.task_id: (r.status, r.error_message) for r in store.tasks(run_id)}
    assert rows == {"w.main.a": (TaskStatus.SKIPPED, "upstream w.main.x failed"),
                    "w.main.b": (TaskStatus.CANCELLED, "interrupted (Ctrl-C)")}


def test_unknown_run_is_a_state_error(store):
    with pytest.raises(StateError, match="unknown run id 'nope'"):
        store.run("nope")


def _set_lease(store, run_id, **values):
    with store.engine.begin() as conn:
        conn.execute(update(store.plan_runs).where(store.plan_runs.c.run_id == run_id).values(**values))


def test_second_runner_refused_naming_the_holder(store):
    run_id = new_run_id()
    store.create_run(tiny_plan("a"), "{}", run_id)
    with Lease(store, run_id):
        with pytest.raises(StateError, match=rf"another runner \(host {socket.gethostname()}, pid {os.getpid()}\)"):
            Lease(store, run_id).acquire()
    with Lease(store, run_id):  # released: free again
        pass


def test_lease_of_a_dead_process_on_this_host_is_taken_without_flags(store):
    run_id = new_run_id()
    store.create_run(tiny_plan("a"), "{}", run_id)
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    _set_lease(store, run_id, lease_owner=f"{socket.gethostname()}:{dead.pid}:x", host=socket.gethostname(),
               pid=dead.pid, lease_expires_at=datetime.now(timezone.utc) + timedelta(hours=1))
    with Lease(store, run_id) as lease:
        assert store.run(run_id).lease_owner == lease.owner


def test_live_holder_is_respected_until_its_lease_expires(store):
    run_id = new_run_id()
    store.create_run(tiny_plan("a"), "{}", run_id)
    alive = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        holder = dict(lease_owner=f"{socket.gethostname()}:{alive.pid}:x", host=socket.gethostname(), pid=alive.pid)
        _set_lease(store, run_id, **holder, lease_expires_at=datetime.now(timezone.utc) + timedelta(hours=1))
        with pytest.raises(StateError, match=f"pid {alive.pid}"):
            Lease(store, run_id).acquire()
        _set_lease(store, run_id, lease_expires_at=datetime.now(timezone.utc) - timedelta(seconds=1))
        with Lease(store, run_id):
            pass
    finally:
        alive.kill()
        alive.wait()


def test_heartbeat_renews_the_lease(store):
    run_id = new_run_id()
    store.create_run(tiny_plan("a"), "{}", run_id)
    lease = Lease(store, run_id, ttl=60, heartbeat=0.05)
    lease.acquire()
    try:
        _set_lease(store, run_id, lease_expires_at=datetime(2000, 1, 1, tzinfo=timezone.utc))
        deadline = datetime.now(timezone.utc) + timedelta(seconds=10)
        while store.run(run_id).lease_expires_at.year == 2000 and datetime.now(timezone.utc) < deadline:
            time.sleep(0.02)
        assert store.run(run_id).lease_expires_at > datetime.now(timezone.utc)
    finally:
        lease.release()
    assert store.run(run_id).lease_owner is None


def test_a_runner_whose_lease_was_taken_over_can_write_nothing(store):
    run_id = new_run_id()
    store.create_run(tiny_plan("a", "b"), "{}", run_id)
    other = StateStore(store.storage)  # a second runner: its own fence, the same database
    first = Lease(store, run_id, heartbeat=3600)
    first.acquire()
    store.mark_running(run_id, "w.main.a")  # fenced, and still ours
    _set_lease(store, run_id, lease_expires_at=datetime.now(timezone.utc) - timedelta(seconds=1))
    with Lease(other, run_id):  # takes over the expired lease
        before = {r.task_id: r for r in other.tasks(run_id)}
        for write in (lambda: store.mark_running(run_id, "w.main.b"),
                      lambda: store.mark_succeeded(run_id, outcome("a", True, result("a", 1.0)), "test"),
                      lambda: store.mark_failed(run_id, outcome("a", False)),
                      lambda: store.mark_not_run(run_id, ["w.main.b"], TaskStatus.CANCELLED, {"w.main.b": "x"}),
                      lambda: store.set_run_status(run_id, RunStatus.FAILED)):
            with pytest.raises(StateError, match=f"^run {run_id}: this runner lost its lease .* another runner "
                                                 f"holds it now"):
                write()
        assert {r.task_id: r for r in other.tasks(run_id)} == before
        assert other.run(run_id).status == RunStatus.RUNNING
        assert first._update_mine(lease_expires_at=datetime.now(timezone.utc)) is False  # its heartbeat notices
        other.mark_running(run_id, "w.main.b")  # the new holder writes as usual
    first.release()
