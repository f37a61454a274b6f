"""Prometheus metrics of a run, fed by the event bus.

Each ``RunMetrics`` owns its own ``CollectorRegistry`` (never the process-global one), so
several runs in one process, and tests, stay independent. Labels are of low cardinality only:
``warehouse``, ``status`` and ``batch_size`` — never a worker id or a table name.

Serving: ``serve(port)`` starts prometheus_client's HTTP server on the registry for the run.
When the run ends ``close()`` sets the gauges to 0, writes ``metrics_file`` (node-exporter
textfile style: temp file in the same directory, then rename) and stops the server unless
``keep_alive``; a kept-alive server is served until ``serve_kept_alive_until_interrupt()``
(called by the CLI after the command) returns on Ctrl-C.
"""

from __future__ import annotations

import logging
import os
import threading
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, write_to_textfile

from baselinr.errors import ConfigError
from baselinr.events.bus import (
    BATCH_COMPLETED, PROFILING_COMPLETED, QUEUE_CHANGED, RUN_FINISHED, TASK_SKIPPED,
    WORKER_COMPLETED, WORKER_FAILED, WORKER_STARTED, BaseEvent,
)

logger = logging.getLogger("baselinr.metrics")

BATCH_BUCKETS = (1, 5, 10, 30, 60, 120, 300)
PROFILING_BUCKETS = (0.1, 0.5, 1, 5, 10, 30, 60, 120, 300, 600)
UNKNOWN = "unknown"

# Servers left running after their run by ``monitoring.keep_alive``; see serve_kept_alive_until_interrupt.
_kept_alive: list[tuple[Any, threading.Thread, int]] = []
_kept_alive_lock = threading.Lock()


class RunMetrics:
    """The metric families of one run and the bus subscriber that updates them.

    Worker outcome is counted once per (worker_id, table): the first of ``worker_completed``
    (its ``success`` decides completed/failed) or ``worker_failed`` ends it, so a runner that
    emits both for one failure is not counted twice and ``active_workers`` never goes negative.
    """

    def __init__(self, metrics_file: str | os.PathLike[str] | None = None, keep_alive: bool = False) -> None:
        self.registry = CollectorRegistry()
        self.metrics_file = check_metrics_file(metrics_file) if metrics_file else None
        self.keep_alive = keep_alive
        self._server: tuple[Any, threading.Thread, int] | None = None
        self._lock = threading.Lock()
        self._running: dict[tuple[str, str], str] = {}  # (worker_id, table) -> warehouse
        self._warehouses: set[str] = set()
        reg = self.registry
        self.active_workers = Gauge("baselinr_active_workers", "Workers profiling a table now.", ["warehouse"], registry=reg)
        self.worker_tasks = Counter("baselinr_worker_tasks", "Worker tasks by outcome (started, completed, failed).",
                                    ["warehouse", "status"], registry=reg)
        self.queue_size = Gauge("baselinr_worker_queue_size", "Tasks waiting for a worker.", ["warehouse"], registry=reg)
        self.batch_duration = Histogram("baselinr_batch_duration_seconds", "Wall time of a batch of tasks.",
                                        ["warehouse", "batch_size"], buckets=BATCH_BUCKETS, registry=reg)
        self.tables_profiled = Counter("baselinr_tables_profiled", "Tables by final outcome (completed, failed, skipped).",
                                       ["warehouse", "status"], registry=reg)
        self.profiling_duration = Histogram("baselinr_profiling_duration_seconds", "Time to profile one table.",
                                            ["warehouse"], buckets=PROFILING_BUCKETS, registry=reg)
        self.rows_scanned = Counter("baselinr_rows_scanned", "Rows of the tables profiled.", ["warehouse"], registry=reg)

    # -- the bus subscriber --------------------------------------------------------------
    def handle_event(self, event: BaseEvent) -> None:
        """Update the metrics from one bus event; unknown events are ignored."""
        md = event.metadata
        warehouse = str(md.get("warehouse") or UNKNOWN)
        with self._lock:
            if event.event_type == WORKER_STARTED:
                self._worker_started(warehouse, md)
            elif event.event_type in (WORKER_COMPLETED, WORKER_FAILED):
                ok = event.event_type == WORKER_COMPLETED and md.get("success", True) is not False
                self._worker_ended(md, "completed" if ok else "failed")
            elif event.event_type == QUEUE_CHANGED:
                self._set_queue(warehouse, md)
            elif event.event_type == BATCH_COMPLETED:
                self.batch_duration.labels(warehouse, str(md.get("batch_size", UNKNOWN))).observe(
                    float(md.get("duration_seconds") or 0))
            elif event.event_type == PROFILING_COMPLETED:
                self.profiling_duration.labels(warehouse).observe(float(md.get("duration_seconds") or 0))
                self.rows_scanned.labels(warehouse).inc(int(md.get("row_count") or 0))
            elif event.event_type == TASK_SKIPPED:
                self.tables_profiled.labels(warehouse, "skipped").inc()
            elif event.event_type == RUN_FINISHED:
                self._reset_gauges()

    def _worker_started(self, warehouse: str, md: dict[str, Any]) -> None:
        self._running[(str(md.get("worker_id")), str(md.get("table")))] = warehouse
        self._warehouses.add(warehouse)
        self.worker_tasks.labels(warehouse, "started").inc()
        self.active_workers.labels(warehouse).set(sum(1 for w in self._running.values() if w == warehouse))
        self._set_queue(warehouse, md)

    def _worker_ended(self, md: dict[str, Any], status: str) -> None:
        warehouse = self._running.pop((str(md.get("worker_id")), str(md.get("table"))), None)
        if warehouse is None:  # already ended by the other end event of the same task
            return
        self.worker_tasks.labels(warehouse, status).inc()
        self.tables_profiled.labels(warehouse, status).inc()  # final: a task whose results could not be stored failed
        self.active_workers.labels(warehouse).set(sum(1 for w in self._running.values() if w == warehouse))

    def _set_queue(self, warehouse: str, md: dict[str, Any]) -> None:
        if md.get("queue_size") is not None:
            self._warehouses.add(warehouse)
            self.queue_size.labels(warehouse).set(float(md["queue_size"]))

    def _reset_gauges(self) -> None:
        self._running.clear()
        for warehouse in self._warehouses:
            self.active_workers.labels(warehouse).set(0)
            self.queue_size.labels(warehouse).set(0)

    # -- serving and the end of the run --------------------------------------------------
    def serve(self, port: int, addr: str = "0.0.0.0") -> int:
        """Serve the registry over HTTP on ``port`` (0 picks a free one); returns the bound port.

        Raises ``ConfigError`` naming ``monitoring.port`` when the port cannot be bound.
        """
        from prometheus_client import start_http_server

        try:
            server, thread = start_http_server(port, addr=addr, registry=self.registry)
        except OSError as exc:
            raise ConfigError(f"monitoring.port: cannot serve metrics on port {port}: {exc.strerror or exc}") from None
        bound = int(server.server_address[1])
        self._server = (server, thread, bound)
        logger.info("serving Prometheus metrics on http://%s:%d/metrics", addr, bound)
        return bound

    def close(self) -> None:
        """End of run: gauges to 0, write the metrics file, stop the server unless kept alive."""
        with self._lock:
            self._reset_gauges()
        if self.metrics_file is not None:
            write_to_textfile(str(self.metrics_file), self.registry)
            logger.debug("wrote metrics to %s", self.metrics_file)
        if self._server is None:
            return
        if self.keep_alive:
            with _kept_alive_lock:
                _kept_alive.append(self._server)
        else:
            _shutdown(self._server)
        self._server = None

    def abort(self) -> None:
        """The run never started: stop the server (even with keep_alive) and write no file."""
        if self._server is not None:
            _shutdown(self._server)
            self._server = None


def check_metrics_file(path: str | os.PathLike[str]) -> Path:
    """The file to write (a symlink's target: the file is replaced through a rename, which would
    otherwise replace the link) if its directory exists and is writable; else ``ConfigError``."""
    target = Path(os.path.realpath(path))
    directory = target.parent
    if target.is_dir():
        raise ConfigError(f"--metrics-file: {path} is a directory; give a file path such as {Path(path) / 'baselinr.prom'}")
    if target.exists() and not target.is_file():
        raise ConfigError(f"--metrics-file: {path} is not a regular file (a device or pipe); give a file path")
    if directory.exists() and not directory.is_dir():
        raise ConfigError(f"--metrics-file: {directory} is a file, not a directory")
    if not directory.is_dir():
        raise ConfigError(f"--metrics-file: directory {directory} does not exist")
    if not os.access(directory, os.W_OK):
        raise ConfigError(f"--metrics-file: directory {directory} is not writable")
    return target


def kept_alive_ports() -> list[int]:
    """Ports still served after their run ended (``monitoring.keep_alive``)."""
    with _kept_alive_lock:
        return [port for _server, _thread, port in _kept_alive]


def serve_kept_alive_until_interrupt(stop: threading.Event | None = None, *, wait: bool = True) -> None:
    """Block while a kept-alive metrics server is serving, until Ctrl-C (or ``stop`` is set).

    Returns at once when there is none. Shuts the servers down before returning; ``wait=False``
    only shuts them down (the run itself was interrupted). The CLI calls this after a run
    command so that ``keep_alive: true`` is an explicit "serve until Ctrl-C".
    """
    ports = kept_alive_ports()
    if not ports:
        return
    stop = stop or threading.Event()
    try:
        if wait:
            logger.warning("run finished; still serving metrics on port %s (monitoring.keep_alive) - "
                           "press Ctrl-C to exit", ", ".join(map(str, ports)))
            while not stop.wait(0.5):
                pass
    except KeyboardInterrupt:
        pass
    finally:
        with _kept_alive_lock:
            servers, _kept_alive[:] = list(_kept_alive), []
        for server in servers:
            _shutdown(server)


def _shutdown(server: tuple[Any, threading.Thread, int]) -> None:
    httpd, thread, _port = server
    httpd.shutdown()
    httpd.server_close()
    thread.join(timeout=5)
