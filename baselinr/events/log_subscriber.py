"""The bus subscriber that turns lifecycle events into structured log records (``log_event``).

Levels: worker_started, batch_started, profiling_started, profiling_completed, a final
profiling_failed (table_profiling_failed says it next) and queue_changed at debug, so a text log
at info has one line per table; worker_completed, batch_completed and the run events at info;
task_skipped and a profiling_failed that will be retried at warning; worker_failed and
table_profiling_failed at error. Each record carries the ``RunContext``; task events get the
task id (metadata ``task_id``, else ``table``) and attempt.
"""

from __future__ import annotations

import functools
import logging
import string
from typing import Any

from baselinr.events import bus as ev
from baselinr.utils.logging import RunContext, log_event

logger = logging.getLogger("baselinr.events.log")

# event type -> (level, message template over the metadata; missing keys render as "?")
_FORMATS: dict[str, tuple[str, str]] = {
    ev.RUN_STARTED: ("info", "run {run_id} started: {tasks} tasks, max_workers={max_workers}"),
    ev.RUN_FINISHED: ("info", "run {run_id} finished: {status} in {duration_seconds:.2f}s"),
    ev.BATCH_STARTED: ("debug", "batch {batch_id} started on {warehouse}: {batch_size} tasks"),
    ev.BATCH_COMPLETED: ("info", "batch {batch_id} on {warehouse}: {successful} succeeded, {failed} failed, "
                                 "{skipped} skipped, {cancelled} cancelled in {duration_seconds:.2f}s"),
    ev.WORKER_STARTED: ("debug", "worker {worker_id} started {table}"),
    ev.WORKER_COMPLETED: ("info", "worker {worker_id} finished {table} in {duration_seconds:.2f}s"),
    ev.WORKER_FAILED: ("error", "worker {worker_id} failed on {table}: {error}"),
    ev.PROFILING_STARTED: ("debug", "profiling {table}"),
    ev.PROFILING_COMPLETED: ("debug", "profiled {table}: {row_count} rows, {column_count} columns "
                                     "in {duration_seconds:.2f}s"),
    ev.PROFILING_FAILED: ("debug", "profiling {table} failed: {error}"),
    ev.TABLE_PROFILING_FAILED: ("error", "table {table} failed: {error}"),
    ev.TASK_SKIPPED: ("warning", "skipped {table}: {reason}"),
    ev.QUEUE_CHANGED: ("debug", "{queue_size} tasks queued for {warehouse}"),
}
_RUN_LEVEL_EVENTS = frozenset({ev.RUN_STARTED, ev.RUN_FINISHED, ev.BATCH_STARTED, ev.BATCH_COMPLETED, ev.QUEUE_CHANGED})


class EventLogger:
    """Logs every bus event through ``log_event`` with the run context attached, at the event's
    level above, or at ``level`` for all of them when given (the ``logging`` hook).

    The context's ``run_id`` is taken from ``run_started`` when the context has none yet.
    """

    def __init__(self, context: RunContext | None = None, log: logging.Logger = logger,
                 level: str | None = None) -> None:
        self.context = context or RunContext()
        self._log = log
        self._level = level

    def handle_event(self, event: ev.BaseEvent) -> None:
        md = event.metadata
        if event.event_type == ev.RUN_STARTED:
            self.context = self.context.adopt_run_id(md)
        level, template = _FORMATS.get(event.event_type, ("info", event.event_type))
        if event.event_type == ev.PROFILING_FAILED and md.get("will_retry"):
            level = "warning"
        level = self._level or level
        context = self.context
        if event.event_type not in _RUN_LEVEL_EVENTS and (md.get("task_id") or md.get("table")):
            context = context.for_task(str(md.get("task_id") or md.get("table")), md.get("attempt"))
        log_event(self._log, event.event_type, _message(template, md), level=level, metadata=md, context=context,
                  shown=_fields_of(template))


def _message(template: str, metadata: dict[str, Any]) -> str:
    """The template filled from metadata; a missing or ill-typed value renders as ``?``."""
    try:
        return template.format_map(_Lenient({k: v for k, v in metadata.items() if v is not None}))
    except (ValueError, TypeError):
        return template.format_map(_Lenient())


@functools.lru_cache(maxsize=None)
def _fields_of(template: str) -> frozenset[str]:
    """Names a template shows, e.g. ``{"table", "error"}``."""
    return frozenset(name for _text, name, _spec, _conv in string.Formatter().parse(template) if name)


class _Lenient(dict[str, Any]):
    """Metadata for ``format_map``: a missing key renders as ``?`` (never a KeyError in a hook)."""

    def __missing__(self, key: str) -> "_Missing":
        return _Missing()


class _Missing:
    def __format__(self, _spec: str) -> str:
        return "?"
