"""Shared helpers of the observability tests: a simulated parallel run on the bus and a small
HTTP receiver. (No tests here; the module name keeps it inside the observability test files.)"""

from __future__ import annotations

import json
import threading
from collections import Counter
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Iterator

from baselinr.events import bus as ev
from baselinr.events.bus import EventBus


@dataclass
class SimulatedRun:
    """What ``simulate_run`` emitted, counted independently of any subscriber."""

    emitted: Counter[str] = field(default_factory=Counter)
    succeeded: dict[str, int] = field(default_factory=Counter)  # warehouse -> tasks
    failed: dict[str, int] = field(default_factory=Counter)
    rows: dict[str, int] = field(default_factory=Counter)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def emit(self, bus: EventBus, event_type: str, **metadata: object) -> None:
        bus.emit(event_type, **metadata)
        with self.lock:
            self.emitted[event_type] += 1


def simulate_run(bus: EventBus, tables: int = 40, workers: int = 8, warehouses: tuple[str, ...] = ("pg", "lite"),
                 gate: threading.Barrier | None = None) -> SimulatedRun:
    """Emit a run's events as a runner would: ``workers`` threads, every 5th table fails.

    ``gate``, when given, is awaited by every worker while its first task is running (so a test
    can look at the live state), and again right after.
    """
    run = SimulatedRun()
    run.emit(bus, ev.RUN_STARTED, run_id="run-sim", tasks=tables, max_workers=workers)
    for warehouse in warehouses:
        run.emit(bus, ev.BATCH_STARTED, batch_id=f"{warehouse}-0", batch_size=tables // len(warehouses),
                 max_workers=workers, warehouse=warehouse)

    def worker(n: int) -> None:
        for i in range(n, tables, workers):
            warehouse, table = warehouses[i % len(warehouses)], f"main.t{i:03d}"
            common = {"table": table, "warehouse": warehouse}
            run.emit(bus, ev.WORKER_STARTED, worker_id=f"w{n}", queue_size=max(tables - i - workers, 0),
                     active_workers=workers, **common)
            run.emit(bus, ev.PROFILING_STARTED, attempt=1, **common)
            if gate is not None and i == n:
                gate.wait()
                gate.wait()
            if i % 5 == 0:
                run.emit(bus, ev.PROFILING_FAILED, error="relation does not exist", error_type="ProgrammingError",
                         attempt=1, will_retry=False, **common)
                run.emit(bus, ev.TABLE_PROFILING_FAILED, error="relation does not exist",
                         error_type="ProgrammingError", **common)
                run.emit(bus, ev.WORKER_FAILED, worker_id=f"w{n}", error="relation does not exist",
                         error_type="ProgrammingError", **common)
                with run.lock:
                    run.failed[warehouse] += 1
            else:
                run.emit(bus, ev.PROFILING_COMPLETED, row_count=100 + i, column_count=3, duration_seconds=0.01 * i,
                         **common)
                run.emit(bus, ev.WORKER_COMPLETED, worker_id=f"w{n}", duration_seconds=0.01 * i, success=True,
                         **common)
                with run.lock:
                    run.succeeded[warehouse] += 1
                    run.rows[warehouse] += 100 + i

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(workers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for warehouse in warehouses:
        run.emit(bus, ev.BATCH_COMPLETED, batch_id=f"{warehouse}-0", batch_size=tables // len(warehouses),
                 successful=run.succeeded[warehouse], failed=run.failed[warehouse], duration_seconds=7.5,
                 warehouse=warehouse)
    run.emit(bus, ev.RUN_FINISHED, run_id="run-sim", status="failed", duration_seconds=1.0,
             counts={"succeeded": sum(run.succeeded.values()), "failed": sum(run.failed.values())})
    return run


class Receiver:
    """A real local HTTP server that records JSON POST bodies; ``status`` is the reply code and
    ``hold`` (when set) is awaited before replying, to play a slow endpoint."""

    def __init__(self, status: int = 200, hold: threading.Event | None = None) -> None:
        self.bodies: list[dict] = []
        self.headers: list[dict[str, str]] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                body = self.rfile.read(int(self.headers["Content-Length"]))
                if hold is not None:
                    hold.wait()
                receiver.bodies.append(json.loads(body))
                receiver.headers.append(dict(self.headers))
                self.send_response(status)
                self.end_headers()

            def log_message(self, *_args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/events"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> "Receiver":
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


def events_by_table(rows: Iterator[tuple[str, dict]]) -> dict[str, list[str]]:
    """Event types per table, in the order given."""
    out: dict[str, list[str]] = {}
    for event_type, metadata in rows:
        if "table" in metadata:
            out.setdefault(metadata["table"], []).append(event_type)
    return out
