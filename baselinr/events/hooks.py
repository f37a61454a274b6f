"""User hooks from the config (``hooks: {enabled, hooks: [...]}``) and the queued-hook base.

``build_hooks(config.hooks)`` returns one subscriber per enabled entry: ``logging``
(``LoggingHook``), ``sql`` (``SqlHook``), ``webhook`` (``WebhookHook``) or ``custom`` (an
instance of ``module.class_name(**params)`` with ``handle_event(event)``). A hook that cannot be
built (unimportable class, unreachable driver) is bad input: ``ConfigError`` naming
``hooks.hooks[i]``. A hook that fails on an event is logged and never breaks the run.
"""

from __future__ import annotations

import importlib
import logging
import queue
import threading
from typing import Any

from baselinr.config.models import HookConfig, HooksConfig
from baselinr.errors import BaselinrError, ConfigError
from baselinr.events.bus import RUN_STARTED, BaseEvent, Subscriber
from baselinr.events.log_subscriber import EventLogger
from baselinr.utils.logging import RunContext, scrub_text

logger = logging.getLogger("baselinr.events.hooks")

FLUSH_TIMEOUT_S = 30.0
Stamped = tuple[BaseEvent, RunContext]  # an event and the run context it was emitted in


class LoggingHook(EventLogger):
    """Logs every event at one fixed level on the ``baselinr.hooks`` logger, worded and with the
    run and task context like Baselinr's own event log."""

    def __init__(self, level: str = "info", context: RunContext | None = None) -> None:
        super().__init__(context, logging.getLogger("baselinr.hooks"), level=level)


class QueuedHook:
    """A hook whose slow delivery runs on its own sender thread, so workers never wait on it.

    ``handle_event`` only enqueues. One thread delivers in emission order, in batches of what is
    queued (``deliver(events)``). ``close()`` flushes: it waits up to ``flush_timeout`` seconds
    for the queue to drain and reports events that could not be delivered. Failures are logged
    (the first at warning, the rest at debug) and counted; they never reach the run.
    """

    name = "queued"

    def __init__(self, context: RunContext | None = None, flush_timeout: float = FLUSH_TIMEOUT_S,
                 max_batch: int = 500) -> None:
        self.context = context or RunContext()
        self.flush_timeout = flush_timeout
        self.max_batch = max_batch
        self.delivered = 0
        self.failed = 0
        self._queue: queue.SimpleQueue[Stamped | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name=f"baselinr-{self.name}-hook", daemon=True)
        self._thread.start()

    def deliver(self, events: list[Stamped]) -> None:
        """Deliver a batch of (event, run context at emission), in order; raise on failure."""
        raise NotImplementedError

    def handle_event(self, event: BaseEvent) -> None:
        # Called under the bus lock, in emission order: the context update needs no lock.
        self.context = self.context.adopt_run_id(event.metadata) if event.event_type == RUN_STARTED else self.context
        self._queue.put((event, self.context))

    def close(self) -> None:
        self._queue.put(None)
        self._thread.join(self.flush_timeout)
        if self._thread.is_alive():
            logger.warning("%s hook: gave up flushing after %.0fs; undelivered events dropped", self.name,
                           self.flush_timeout)
        if self.failed:
            logger.warning("%s hook: %d of %d events not delivered", self.name, self.failed,
                           self.failed + self.delivered)

    def _run(self) -> None:
        done = False
        while not done:
            batch: list[Stamped] = []
            item = self._queue.get()
            while item is not None:
                batch.append(item)
                if len(batch) >= self.max_batch or self._queue.empty():
                    break
                item = self._queue.get()
            done = item is None
            if batch:
                self._deliver_logged(batch)

    def _deliver_logged(self, batch: list[Stamped]) -> None:
        try:
            self.deliver(batch)
            self.delivered += len(batch)
        except Exception as exc:  # noqa: BLE001 - a broken hook must not break the run
            level = logging.DEBUG if self.failed else logging.WARNING
            self.failed += len(batch)
            logger.log(level, "%s hook could not deliver %d event(s): %s: %s", self.name, len(batch),
                       type(exc).__name__, exc)


def build_hooks(config: HooksConfig, context: RunContext | None = None) -> list[Subscriber]:
    """One subscriber per enabled hook (none when ``hooks.enabled`` is false), in config order.

    ``context`` (run id, environment) is stamped on what the sql and webhook hooks send."""
    if not config.enabled:
        return []
    hooks: list[Subscriber] = []
    try:
        for index, hook in enumerate(config.hooks):
            if hook.enabled:
                hooks.append(build_hook(hook, f"hooks.hooks[{index}]", context))
    except BaselinrError:
        for built in hooks:  # stop the sender threads of the hooks built so far
            getattr(built, "close", lambda: None)()
        raise
    return hooks


def build_hook(hook: HookConfig, where: str = "hook", context: RunContext | None = None) -> Subscriber:
    """The subscriber for one hook entry; ``where`` names it in errors."""
    if hook.type == "logging":
        return LoggingHook(hook.level, context)
    if hook.type == "sql":
        from baselinr.events.sql_hook import SqlHook

        return SqlHook(hook.connection, hook.table_name, where=where, context=context)  # type: ignore[arg-type]
    if hook.type == "webhook":
        from baselinr.events.webhook import WebhookHook

        return WebhookHook(hook.url, headers=hook.headers, timeout=hook.timeout_seconds,  # type: ignore[arg-type]
                           where=where, context=context)
    return _custom_hook(hook, where)


def _custom_hook(hook: HookConfig, where: str) -> Subscriber:
    target = f"{hook.module}.{hook.class_name}"
    try:
        cls = getattr(importlib.import_module(str(hook.module)), str(hook.class_name))
    except ImportError as exc:
        raise ConfigError(f"{where}.module: cannot import {hook.module!r}: {exc}") from None
    except AttributeError:
        raise ConfigError(f"{where}.class_name: module {hook.module!r} has no {hook.class_name!r}") from None
    try:
        instance: Any = cls(**hook.params)
    except Exception as exc:  # noqa: BLE001 - any constructor error is a config problem of this hook
        raise ConfigError(f"{where}: {target}(**params) failed: {type(exc).__name__}: {scrub_text(str(exc))}") from None
    if not callable(getattr(instance, "handle_event", None)):
        raise ConfigError(f"{where}: {target} has no handle_event(event) method")
    return instance
