"""Logging setup and structured log events (text by default, JSON lines with --log-format json)."""

from __future__ import annotations

import logging
import sys
from dataclasses import dataclass, replace
from typing import Any

LOGGER_NAME = "baselinr"


@dataclass(frozen=True)
class RunContext:
    """Who is logging: the run, the environment, the command, and for a task its id and attempt."""

    run_id: str | None = None
    environment: str = "development"
    command: str = ""
    task_id: str | None = None
    attempt: int | None = None

    def for_task(self, task_id: str, attempt: int) -> "RunContext":
        return replace(self, task_id=task_id, attempt=attempt)


def configure_logging(fmt: str = "text", level: str = "info") -> None:
    """Send Baselinr's logs to stderr in ``fmt`` ("text" or "json") at ``level``."""
    root = logging.getLogger(LOGGER_NAME)
    root.handlers.clear()
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(levelname)s %(message)s"))
    root.addHandler(handler)
    root.setLevel(level.upper())
    root.propagate = False


def log_event(logger: logging.Logger, event_type: str, message: str, level: str = "info",
              metadata: dict[str, Any] | None = None, context: RunContext | None = None) -> None:
    """Log ``message`` with an event type, the run context and metadata attached as record extras."""
    logger.log(logging.getLevelName(level.upper()), message,
               extra={"event_type": event_type, "metadata": metadata or {}, "run_context": context})
