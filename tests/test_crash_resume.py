"""kill -9 a real `baselinr apply` mid-run, then `baselinr resume`: nothing lost, nothing doubled."""

from __future__ import annotations

import os
import signal
import socket
import time

import pytest
from sqlalchemy import func, select

from baselinr.errors import StateError
from baselinr.runner import RunStatus, TaskStatus, open_state, resume_run
from baselinr.runner.reporter import SilentReporter
from tests.conftest import create_database
from tests.test_runner_fixtures import cli, config_data, make_config, make_slow_views, popen_cli, write_config

VIEWS = [f"slow{i}" for i in range(6)]


def wait_for(predicate, timeout: float = 60.0, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def test_sigkill_mid_run_then_resume_finishes_exactly_once(tmp_path, pg_server, pg_db):
    make_slow_views(pg_db, VIEWS, 0.6)
    store_conn = create_database(pg_server, "crash_state_store")
    data = config_data(tmp_path, {"pg": pg_db}, [{"pattern": "slow*"}],
                       execution={"max_workers": 2, "warehouse_limits": {"pg": 2}})
    data["storage"] = {"connection": store_conn}
    cfg = write_config(tmp_path, data)
    config = make_config(data)
    plan = cli("plan", "-c", str(cfg), cwd=tmp_path)
    assert plan.returncode == 0, plan.stderr
    (tmp_path / "plan.json").write_text(plan.stdout)

    proc = popen_cli("apply", "plan.json", "-c", str(cfg), cwd=tmp_path)
    try:
        store = open_state(config)
        run = wait_for(lambda: next(iter(store.runs()), None), what="the run row")
        tasks = lambda: {r.task_id: r for r in store.tasks(run.run_id)}  # noqa: E731
        wait_for(lambda: any(r.status == TaskStatus.SUCCEEDED for r in tasks().values())
                 and any(r.status == TaskStatus.RUNNING and r.backend_pid for r in tasks().values()),
                 what="one task done and one running")

        with pytest.raises(StateError) as refused:  # a second runner on the same run, while it is alive
            resume_run(run.run_id, config, reporter=SilentReporter())
        assert str(refused.value) == (f"run {run.run_id} is being executed by another runner (host "
                                      f"{socket.gethostname()}, pid {proc.pid}); wait for it to finish or stop it first")
        assert refused.value.exit_code == 2
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.kill()
        proc.wait()

    before = tasks()
    done_before = {t: (r.started_at, r.attempts) for t, r in before.items() if r.status == TaskStatus.SUCCEEDED}
    assert 0 < len(done_before) < len(VIEWS)
    assert store.run(run.run_id).status == RunStatus.RUNNING  # the dead runner never finished it

    resumed = cli("resume", "-c", str(cfg), cwd=tmp_path)  # no flags: the dead runner's lease is detected
    assert resumed.returncode == 0, resumed.stderr
    for task_id, row in before.items():
        if row.status != TaskStatus.SUCCEEDED:
            reason = "interrupted" if row.status == TaskStatus.RUNNING else "never started"
            assert f"  {task_id}: {reason}\n" in resumed.stderr
    after = tasks()
    assert {t: r.status for t, r in after.items()} == {t: TaskStatus.SUCCEEDED for t in after}
    assert {t: (after[t].started_at, after[t].attempts) for t in done_before} == done_before  # not re-run
    assert store.run(run.run_id).status == RunStatus.SUCCEEDED

    tables = store.storage.tables
    with store.engine.connect() as conn:
        runs = dict(conn.execute(select(tables.runs.c.dataset_name, func.count()).where(
            tables.runs.c.run_id == run.run_id).group_by(tables.runs.c.dataset_name)).all())
        stamps = dict(conn.execute(select(tables.results.c.dataset_name, func.count(tables.results.c.profiled_at.distinct()))
                                   .where(tables.results.c.run_id == run.run_id)
                                   .group_by(tables.results.c.dataset_name)).all())
    assert runs == {v: 1 for v in VIEWS}  # exactly one result set per table
    assert stamps == {v: 1 for v in VIEWS}  # and no leftover rows of a second profiling


def test_ctrl_c_lets_running_tasks_finish_records_state_and_exits_130(tmp_path, pg_db):
    make_slow_views(pg_db, VIEWS, 0.6)
    data = config_data(tmp_path, {"pg": pg_db}, [{"pattern": "slow*"}],
                       execution={"max_workers": 2, "warehouse_limits": {"pg": 2}})
    cfg = write_config(tmp_path, data)
    config = make_config(data)
    (tmp_path / "plan.json").write_text(cli("plan", "-c", str(cfg), cwd=tmp_path).stdout)
    proc = popen_cli("apply", "plan.json", "-c", str(cfg), cwd=tmp_path)
    store = open_state(config)
    run = wait_for(lambda: next(iter(store.runs()), None), what="the run row")
    wait_for(lambda: sum(r.status == TaskStatus.RUNNING for r in store.tasks(run.run_id)) == 2, what="two running")
    running = {r.task_id for r in store.tasks(run.run_id) if r.status == TaskStatus.RUNNING}
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130, stderr
    rows = {r.task_id: r for r in store.tasks(run.run_id)}
    assert all(rows[t].status == TaskStatus.SUCCEEDED for t in running)  # let finish, not abandoned
    assert {r.status for r in rows.values()} <= {TaskStatus.SUCCEEDED, TaskStatus.CANCELLED}
    assert any(r.status == TaskStatus.CANCELLED and r.error_message == "interrupted (Ctrl-C)" for r in rows.values())
    assert store.run(run.run_id).status == RunStatus.INTERRUPTED
    assert ("interrupted: starting no new task; waiting for 2 running task(s) to finish (Ctrl-C again to abort "
            "them)\n") in stderr
    assert f"run `baselinr resume {run.run_id}`" in stderr
    resumed = cli("resume", "-c", str(cfg), cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    assert {r.status for r in store.tasks(run.run_id)} == {TaskStatus.SUCCEEDED}
