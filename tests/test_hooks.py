"""Hooks from the config, on real parts: the sql hook on SQLite and PostgreSQL, the webhook
against a real local HTTP server, custom hooks imported from a module file."""

from __future__ import annotations

import json
import sys
import textwrap
import threading
from collections import Counter
from pathlib import Path

import pytest
from sqlalchemy import create_engine, select

from baselinr.config.loader import parse_config
from baselinr.errors import ConfigError, WarehouseConnectionError
from baselinr.events import build_event_bus
from baselinr.events import bus as ev
from baselinr.events.sql_hook import events_table
from baselinr.utils.logging import RunContext
from tests.test_observability_helpers import Receiver, events_by_table, simulate_run


def config_with(*hooks: dict, enabled: bool = True):
    return parse_config({"hooks": {"enabled": enabled, "hooks": list(hooks)}})


def stored_events(url: str, table: str = "baselinr_events") -> list[tuple]:
    """(event_type, metadata, run_id, timestamp, environment) of every stored row, in id order."""
    engine = create_engine(url)
    t = events_table(table)
    with engine.connect() as conn:
        rows = conn.execute(select(t.c.event_type, t.c.metadata, t.c.run_id, t.c.timestamp, t.c.environment)
                            .order_by(t.c.id)).all()
    engine.dispose()
    return [(r[0], json.loads(r[1]), r[2], r[3], r[4]) for r in rows]


def test_sql_hook_stores_every_event_of_an_8_worker_run_on_postgresql(pg_db: dict) -> None:
    bus = build_event_bus(config_with({"type": "sql", "connection": pg_db}))
    run = simulate_run(bus, tables=120, workers=8)
    bus.close()
    rows = stored_events(f"postgresql+psycopg://{pg_db['username']}@{pg_db['host']}:{pg_db['port']}/{pg_db['database']}")
    assert Counter(r[0] for r in rows) == run.emitted
    assert len(rows) == sum(run.emitted.values())
    assert {(r[2], r[4]) for r in rows} == {("run-sim", "development")}
    assert all(r[3].tzinfo is not None for r in rows)
    # Rows are in delivery order, so each task's events are in lifecycle order.
    for table, types in events_by_table((r[0], r[1]) for r in rows).items():
        assert types[:2] == [ev.WORKER_STARTED, ev.PROFILING_STARTED], table
        assert types[-1] in (ev.WORKER_COMPLETED, ev.WORKER_FAILED), table


def test_sql_hook_on_sqlite_with_a_custom_table_name_keeps_metadata(tmp_path: Path) -> None:
    db = tmp_path / "events.db"
    hook = {"type": "sql", "connection": {"type": "sqlite", "filepath": str(db)}, "table_name": "audit_events"}
    bus = build_event_bus(config_with(hook))
    run = simulate_run(bus, tables=30, workers=8)
    bus.emit(ev.WORKER_FAILED, worker_id="w1", table="main.x", error="auth failed for sqlite://u:pw@h", token="abc")
    bus.close()
    rows = stored_events(f"sqlite:///{db}", "audit_events")
    assert len(rows) == sum(run.emitted.values()) + 1
    completed = [r[1] for r in rows if r[0] == ev.PROFILING_COMPLETED]
    assert sorted(m["row_count"] for m in completed) == sorted(100 + i for i in range(30) if i % 5)
    assert rows[-1][1] == {"worker_id": "w1", "table": "main.x", "error": "auth failed for sqlite://u:***@h",
                           "token": "***"}


def test_sql_hook_creates_its_table_once_and_appends_with_the_run_context(tmp_path: Path) -> None:
    hook = {"type": "sql", "connection": {"type": "sqlite", "filepath": str(tmp_path / "e.db")}}
    with build_event_bus(config_with(hook)) as bus:  # run id learnt from run_started
        bus.emit(ev.RUN_STARTED, run_id="r1", tasks=0, max_workers=1)
        bus.emit(ev.RUN_FINISHED, run_id="r1", status="succeeded", counts={}, duration_seconds=0.0)
    with build_event_bus(config_with(hook), context=RunContext(run_id="r2", environment="prod")) as bus:
        bus.emit(ev.TASK_SKIPPED, table="w.main.t", warehouse="w", reason="upstream failed")
    rows = stored_events(f"sqlite:///{tmp_path / 'e.db'}")
    assert [(r[0], r[2], r[4]) for r in rows] == [(ev.RUN_STARTED, "r1", "development"),
                                                  (ev.RUN_FINISHED, "r1", "development"),
                                                  (ev.TASK_SKIPPED, "r2", "prod")]


def test_sql_hook_that_cannot_reach_its_database_is_bad_input_without_the_password(pg_server) -> None:
    conn = {"type": "postgres", "host": "127.0.0.1", "port": pg_server.port, "database": "no_such_db",
            "username": "nobody", "password": "pw-secret-1"}
    with pytest.raises(WarehouseConnectionError, match=r"hooks\.hooks\[0\]\.connection: cannot create table") as exc:
        build_event_bus(config_with({"type": "sql", "connection": conn}))
    assert "pw-secret-1" not in str(exc.value)


def test_webhook_posts_each_event_as_json_in_order() -> None:
    with Receiver() as receiver:
        hook = {"type": "webhook", "url": receiver.url, "headers": {"Authorization": "Bearer t0k"}}
        bus = build_event_bus(config_with(hook))
        run = simulate_run(bus, tables=20, workers=4)
        bus.close()
    assert Counter(b["event_type"] for b in receiver.bodies) == run.emitted
    assert receiver.bodies[0]["event_type"] == ev.RUN_STARTED and receiver.bodies[-1]["event_type"] == ev.RUN_FINISHED
    assert all(h["Authorization"] == "Bearer t0k" and h["Content-Type"] == "application/json" for h in receiver.headers)
    assert receiver.bodies[0]["metadata"] == {"run_id": "run-sim", "tasks": 20, "max_workers": 4}
    assert {(b["run_id"], b["environment"]) for b in receiver.bodies} == {("run-sim", "development")}
    assert receiver.bodies[0]["timestamp"].endswith("+00:00")


def test_a_slow_webhook_does_not_stall_the_emitters_and_is_flushed_at_close() -> None:
    release = threading.Event()
    with Receiver(hold=release) as receiver:
        bus = build_event_bus(config_with({"type": "webhook", "url": receiver.url, "timeout_seconds": 30}))
        for i in range(5):
            bus.emit(ev.PROFILING_STARTED, table=f"main.t{i}", warehouse="wh", attempt=1)
        # All five emits returned while the endpoint still holds the first request.
        assert receiver.bodies == []
        release.set()
        bus.close()
    assert [b["metadata"]["table"] for b in receiver.bodies] == [f"main.t{i}" for i in range(5)]


def test_a_failing_webhook_is_logged_and_the_run_goes_on(caplog: pytest.LogCaptureFixture) -> None:
    with Receiver(status=500) as receiver, caplog.at_level("DEBUG", logger="baselinr.events.hooks"):
        bus = build_event_bus(config_with({"type": "webhook", "url": receiver.url}))
        run = simulate_run(bus, tables=10, workers=2)
        bus.close()
    total = sum(run.emitted.values())
    assert len(receiver.bodies) == total  # every event was attempted
    messages = [r.getMessage() for r in caplog.records]
    assert sum("could not deliver" in m for m in messages) == total
    assert f"webhook hook: {total} of {total} events not delivered" in messages


CUSTOM_MODULE = '''
    RECEIVED = []

    class Recorder:
        def __init__(self, prefix):
            self.prefix = prefix

        def handle_event(self, event):
            RECEIVED.append(self.prefix + event.event_type)

    class Exploding:
        def handle_event(self, event):
            raise RuntimeError("custom hook exploded")

    class NoHandler:
        pass
'''


@pytest.fixture
def custom_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    name = f"obs_custom_hooks_{tmp_path.name}"
    (tmp_path / f"{name}.py").write_text(textwrap.dedent(CUSTOM_MODULE))
    monkeypatch.syspath_prepend(str(tmp_path))
    yield name
    sys.modules.pop(name, None)


def test_custom_hook_gets_params_and_a_raising_one_does_not_break_the_run(custom_module: str) -> None:
    bus = build_event_bus(config_with(
        {"type": "custom", "module": custom_module, "class_name": "Exploding"},
        {"type": "custom", "module": custom_module, "class_name": "Recorder", "params": {"prefix": "got:"}},
    ))
    run = simulate_run(bus, tables=10, workers=2)
    bus.close()
    received = sys.modules[custom_module].RECEIVED
    assert Counter(r.removeprefix("got:") for r in received) == run.emitted


@pytest.mark.parametrize(("hook", "message"), [
    ({"class_name": "Missing"}, r"hooks\.hooks\[0\]\.class_name: module '.*' has no 'Missing'"),
    ({"class_name": "NoHandler"}, r"hooks\.hooks\[0\]: .*\.NoHandler has no handle_event\(event\) method"),
    ({"class_name": "Recorder"}, r"hooks\.hooks\[0\]: .*\.Recorder\(\*\*params\) failed: TypeError"),
])
def test_custom_hook_that_cannot_be_built_is_bad_input(custom_module: str, hook: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        build_event_bus(config_with({"type": "custom", "module": custom_module, **hook}))


def test_unimportable_module_and_bad_webhook_scheme_are_bad_input() -> None:
    with pytest.raises(ConfigError, match=r"hooks\.hooks\[0\]\.module: cannot import 'no_such_mod_xyz'"):
        build_event_bus(config_with({"type": "custom", "module": "no_such_mod_xyz", "class_name": "X"}))
    with pytest.raises(ConfigError, match=r"hooks\.hooks\[1\]\.url: .*got scheme 'ftp'"):
        build_event_bus(config_with({"type": "logging"}, {"type": "webhook", "url": "ftp://example/x"}))


def test_disabled_hooks_are_not_built(tmp_path: Path) -> None:
    hook = {"type": "sql", "connection": {"type": "sqlite", "filepath": str(tmp_path / "never.db")}}
    with build_event_bus(config_with(hook, enabled=False)) as bus:
        bus.emit(ev.RUN_STARTED, run_id="r")
    with build_event_bus(config_with({**hook, "enabled": False})) as bus:
        bus.emit(ev.RUN_STARTED, run_id="r")
    assert not (tmp_path / "never.db").exists()


def test_logging_hook_logs_at_its_level(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level("DEBUG", logger="baselinr.hooks"):
        with build_event_bus(config_with({"type": "logging", "level": "warning"})) as bus:
            bus.emit(ev.TASK_SKIPPED, table="main.u", reason="upstream failed")
    [record] = [r for r in caplog.records if r.name == "baselinr.hooks"]
    assert (record.levelname, record.event_type, record.metadata) == (
        "WARNING", ev.TASK_SKIPPED, {"table": "main.u", "reason": "upstream failed"})
    assert (record.getMessage(), record.run_context.task_id) == ("skipped main.u: upstream failed", "main.u")
