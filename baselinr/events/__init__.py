"""The event bus and its hooks.

The runner emits every lifecycle event through the bus; logs, metrics and user hooks are its
subscribers. Use::

    bus = build_event_bus(config, metrics_file=opts.metrics_file, context=RunContext(...))
    try:
        bus.emit(RUN_STARTED, run_id=..., tasks=..., max_workers=...)
        ...
    finally:
        bus.close()   # flush hooks, gauges to 0, write --metrics-file, stop the metrics server
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from baselinr.errors import BaselinrError
from baselinr.events.bus import BaseEvent, EventBus
from baselinr.events.hooks import build_hooks
from baselinr.events.log_subscriber import EventLogger
from baselinr.utils.logging import RunContext

if TYPE_CHECKING:
    from baselinr.config.models import BaselinrConfig
    from baselinr.utils.metrics import RunMetrics

__all__ = ["BaseEvent", "EventBus", "RunEventBus", "build_event_bus"]


class RunEventBus(EventBus):
    """The bus of one run, with its log subscriber and its metrics at hand."""

    def __init__(self, log: EventLogger, metrics: "RunMetrics") -> None:
        super().__init__()
        self.log = log
        self.metrics = metrics


def build_event_bus(config: "BaselinrConfig | None" = None, *, metrics_file: str | os.PathLike[str] | None = None,
                    context: RunContext | None = None) -> RunEventBus:
    """The bus for a run: structured logging, metrics, then the configured hooks, in that order.

    ``context`` is attached to every log record (its run_id is filled from ``run_started`` when
    unset); ``metrics_file`` is written at ``close()``. With ``monitoring.enable_metrics`` the
    metrics are served on ``monitoring.port`` from now until ``close()`` (or, with
    ``keep_alive``, until ``baselinr.utils.metrics.serve_kept_alive_until_interrupt()``).
    Raises ``ConfigError``/``WarehouseConnectionError`` (exit 2) for a hook that cannot be built,
    a port that cannot be bound, or a metrics file whose directory is missing.
    """
    # Imported here: baselinr.utils.metrics imports the event names from this package.
    from baselinr.config.models import BaselinrConfig
    from baselinr.utils.metrics import RunMetrics

    config = config or BaselinrConfig()
    context = context or RunContext(environment=config.environment)
    metrics = RunMetrics(metrics_file, keep_alive=config.monitoring.keep_alive)
    if config.monitoring.enable_metrics:
        metrics.serve(config.monitoring.port)
    try:
        hooks = build_hooks(config.hooks, context)
    except BaselinrError:
        metrics.abort()  # bad input: nothing ran, so no metrics file either
        raise
    bus = RunEventBus(EventLogger(context), metrics)
    for subscriber in (bus.log, metrics, *hooks):
        bus.register(subscriber)
    return bus
