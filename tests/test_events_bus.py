"""The event bus: per-task order across threads, failing subscribers isolated, secrets scrubbed,
close() once; and the log subscriber's levels and context."""

from __future__ import annotations

import json
import threading

import pytest

from baselinr.events import bus as ev
from baselinr.events.bus import BaseEvent, EventBus
from baselinr.events.log_subscriber import EventLogger
from baselinr.utils.logging import RunContext, configure_logging

TASK_EVENTS = (ev.WORKER_STARTED, ev.PROFILING_STARTED, ev.PROFILING_COMPLETED, ev.WORKER_COMPLETED)


def emit_task(bus: EventBus, worker: int, table: str) -> None:
    for event_type in TASK_EVENTS:
        bus.emit(event_type, worker_id=f"w{worker}", table=table, warehouse="wh")


def test_per_task_order_is_kept_across_eight_threads() -> None:
    bus = EventBus()
    seen: list[BaseEvent] = []
    bus.register(seen.append)
    tables = [f"main.t{i}" for i in range(200)]

    def worker(n: int) -> None:
        for table in tables[n::8]:
            emit_task(bus, n, table)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(seen) == len(tables) * len(TASK_EVENTS)
    by_table: dict[str, list[str]] = {}
    for event in seen:
        by_table.setdefault(event.metadata["table"], []).append(event.event_type)
    assert by_table == {table: list(TASK_EVENTS) for table in tables}


def test_a_raising_subscriber_breaks_neither_the_emitter_nor_the_others(caplog: pytest.LogCaptureFixture) -> None:
    bus = EventBus()
    before: list[str] = []
    after: list[str] = []

    def broken(_event: BaseEvent) -> None:
        raise RuntimeError("hook exploded")

    bus.register(lambda e: before.append(e.event_type))
    bus.register(broken)
    bus.register(lambda e: after.append(e.event_type))
    with caplog.at_level("WARNING", logger="baselinr.events"):
        bus.emit(ev.RUN_STARTED, run_id="r")
        bus.emit(ev.RUN_FINISHED, run_id="r")
    assert before == after == [ev.RUN_STARTED, ev.RUN_FINISHED]
    assert sum("hook exploded" in r.getMessage() for r in caplog.records) == 2


def test_metadata_is_scrubbed_before_any_subscriber_sees_it() -> None:
    bus = EventBus()
    seen: list[BaseEvent] = []
    bus.register(seen.append)
    bus.emit(ev.WORKER_FAILED, error="FATAL for postgresql://app:s3cr3t@db:5432/w", password="s3cr3t",
             options={"private_key": "-----BEGIN"})
    assert "s3cr3t" not in json.dumps(seen[0].metadata) and "BEGIN" not in json.dumps(seen[0].metadata)
    assert seen[0].metadata["error"] == "FATAL for postgresql://app:***@db:5432/w"


def test_close_closes_each_subscriber_once_even_if_one_fails() -> None:
    closed: list[str] = []

    class Sub:
        def __init__(self, name: str, fail: bool = False) -> None:
            self.name, self.fail = name, fail

        def handle_event(self, event: BaseEvent) -> None:
            pass

        def close(self) -> None:
            closed.append(self.name)
            if self.fail:
                raise OSError("disk full")

    with EventBus() as bus:
        for sub in (Sub("a"), Sub("b", fail=True), Sub("c")):
            bus.register(sub)
    bus.close()
    assert closed == ["a", "b", "c"]


@pytest.mark.parametrize(("event_type", "metadata", "level"), [
    (ev.WORKER_STARTED, {"worker_id": "w1", "table": "main.t", "queue_size": 3, "active_workers": 2}, "debug"),
    (ev.WORKER_COMPLETED, {"worker_id": "w1", "table": "main.t", "duration_seconds": 0.2, "success": True}, "info"),
    (ev.WORKER_FAILED, {"worker_id": "w1", "table": "main.t", "error": "boom", "error_type": "X"}, "error"),
    (ev.TABLE_PROFILING_FAILED, {"table": "main.t", "error": "boom", "error_type": "X"}, "error"),
    (ev.PROFILING_FAILED, {"table": "main.t", "error": "lost", "attempt": 1, "will_retry": True}, "warning"),
    (ev.PROFILING_FAILED, {"table": "main.t", "error": "lost", "attempt": 3, "will_retry": False}, "debug"),
    (ev.TASK_SKIPPED, {"table": "main.u", "reason": "upstream main.t failed"}, "warning"),
    (ev.BATCH_STARTED, {"batch_id": "b0", "batch_size": 4, "max_workers": 2, "warehouse": "wh"}, "debug"),
])
def test_log_subscriber_levels_and_task_context(capsys: pytest.CaptureFixture[str],
                                                event_type: str, metadata: dict, level: str) -> None:
    configure_logging("json", "debug")
    bus = EventBus()
    bus.register(EventLogger(RunContext(environment="ci", command="apply")))
    bus.emit(ev.RUN_STARTED, run_id="run-7", tasks=1, max_workers=2)
    bus.emit(event_type, **metadata)
    lines = [json.loads(line) for line in capsys.readouterr().err.splitlines()]
    line = lines[-1]
    assert (line["event_type"], line["level"], line["metadata"]) == (event_type, level, metadata)
    assert (line["run_id"], line["environment"], line["command"]) == ("run-7", "ci", "apply")
    assert line["task_id"] == metadata.get("table")
    assert line["attempt"] == metadata.get("attempt")
