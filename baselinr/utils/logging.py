"""Logging setup and structured log events (text by default, JSON lines with --log-format json).

Every record Baselinr writes goes to stderr (stdout carries only command data). A record made
by ``log_event`` carries an ``event_type``, ``metadata`` and the ``RunContext``; both formatters
render those, and both scrub secrets on the way out: metadata values under credential-looking
keys (``SECRET_KEY_RE``) become ``***``, and passwords inside strings (``://user:pw@``,
``password=pw``) are masked, so a driver error quoting a URL cannot leak one.
"""

from __future__ import annotations

import json
import logging
import re
import sys
from dataclasses import asdict, dataclass, fields, replace
from datetime import datetime, timezone
from typing import Any, Collection, Literal

from baselinr.config.models import SECRET_KEY_RE

LOGGER_NAME = "baselinr"
LogFormat = Literal["text", "json"]
MASK = "***"
_configured_format: LogFormat | None = None

# "scheme://user:secret@host" -> "scheme://user:***@host"
_URL_PASSWORD_RE = re.compile(r"(://[^:/?#@\s]*:)[^@/\s]+(@)")
# "password=secret", "token: secret" (libpq DSNs, driver messages) -> "password=***"
_ASSIGNED_SECRET_RE = re.compile(r"\b((?:password|passwd|pwd|secret|token|api_?key)\s*[=:]\s*)([^\s,;&'\"]+)", re.I)


@dataclass(frozen=True)
class RunContext:
    """Who is logging: the run, the environment, the command, and for a task its id and attempt."""

    run_id: str | None = None
    environment: str = "development"
    command: str = ""
    task_id: str | None = None
    attempt: int | None = None

    def for_task(self, task_id: str, attempt: int | None) -> "RunContext":
        return replace(self, task_id=task_id, attempt=attempt)

    def adopt_run_id(self, metadata: dict[str, Any]) -> "RunContext":
        """This context, or a copy taking ``metadata["run_id"]`` (run_started's) when it has no run id."""
        if self.run_id or not metadata.get("run_id"):
            return self
        return replace(self, run_id=str(metadata["run_id"]))


def scrub_text(text: str) -> str:
    """``text`` with passwords in URLs and ``password=...`` assignments masked."""
    text = _URL_PASSWORD_RE.sub(rf"\1{MASK}\2", text)
    return _ASSIGNED_SECRET_RE.sub(rf"\1{MASK}", text)


def scrub(value: Any) -> Any:
    """A copy of ``value`` safe to log or emit: secret-keyed entries masked, strings scrubbed.

    Mappings, lists and tuples are walked; other values are returned as they are.
    """
    if isinstance(value, str):
        return scrub_text(value)
    if isinstance(value, dict):
        return {k: MASK if isinstance(k, str) and SECRET_KEY_RE.search(k) and v is not None else scrub(v)
                for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(scrub(v) for v in value)
    return value


def log_event(logger: logging.Logger, event_type: str, message: str, level: str = "info",
              metadata: dict[str, Any] | None = None, context: RunContext | None = None, *,
              shown: Collection[str] = ()) -> None:
    """Log ``message`` with an event type, the run context and metadata attached as record extras.

    ``shown`` names metadata keys the message already says; the text format omits them.
    """
    logger.log(logging.getLevelName(level.upper()), message,
               extra={"event_type": event_type, "metadata": metadata or {}, "run_context": context,
                      "shown": frozenset(shown)})


_CONTEXT_FIELDS = tuple(f.name for f in fields(RunContext))


def record_fields(record: logging.LogRecord) -> dict[str, Any]:
    """The scrubbed, JSON-ready fields of a record: timestamp, level, event_type, message, run
    context fields (run_id, environment, command, task_id, attempt), metadata, and error if any."""
    context: RunContext | None = getattr(record, "run_context", None)
    out: dict[str, Any] = {
        "timestamp": datetime.fromtimestamp(record.created, timezone.utc).isoformat(timespec="milliseconds"),
        "level": record.levelname.lower(),
        "logger": record.name,
        "event_type": getattr(record, "event_type", None),
        "message": scrub_text(record.getMessage()),
        **(asdict(context) if context else dict.fromkeys(_CONTEXT_FIELDS)),
        "metadata": scrub(getattr(record, "metadata", None) or {}),
    }
    if record.exc_info and record.exc_info[1] is not None:
        exc = record.exc_info[1]
        out["error"] = scrub_text(f"{type(exc).__name__}: {exc}")
    return out


class JsonFormatter(logging.Formatter):
    """One JSON object per line (see ``record_fields``); values JSON cannot hold become strings."""

    def format(self, record: logging.LogRecord) -> str:
        return json.dumps(record_fields(record), default=str, ensure_ascii=False)


class TextFormatter(logging.Formatter):
    """``HH:MM:SS LEVEL message [task attempt] key=value ...`` — readable, scrubbed, one line."""

    def format(self, record: logging.LogRecord) -> str:
        out = record_fields(record)
        parts = [out["timestamp"][11:19], f"{record.levelname:<7}", out["message"]]
        task = [out["task_id"]] if out.get("task_id") and out["task_id"] not in out["message"] else []
        task += [f"attempt {out['attempt']}"] if out.get("attempt") else []
        if task:
            parts.append(f"[{' '.join(map(str, task))}]")
        hidden = _TEXT_HIDDEN | getattr(record, "shown", frozenset())
        parts.extend(f"{k}={_text_value(v)}" for k, v in out["metadata"].items() if k not in hidden)
        if "error" in out and "error" not in out["metadata"]:
            parts.append(f"error={_text_value(out['error'])}")
        return " ".join(parts).translate(_CONTROL_ESCAPES)


# Metadata already shown by the message or the task bracket in text format.
_TEXT_HIDDEN = frozenset({"table", "task_id", "attempt", "run_id"})
# A record is one line: a newline or other control character (a table named "a\nERROR ...")
# is written escaped, so a name can neither split a record nor forge one.
_CONTROL_ESCAPES = {c: f"\\x{c:02x}" for c in [*range(32), 127]} | {10: "\\n", 13: "\\r", 9: "\\t"}


def _text_value(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    return json.dumps(text) if any(c.isspace() for c in text) or not text else text


def configure_logging(fmt: LogFormat = "text", level: str = "info") -> None:
    """Send Baselinr's logs to stderr in ``fmt`` ("text" or "json") at ``level``.

    Idempotent: calling it again replaces the handler. The stream is looked up at each write,
    so a test or a caller that swaps ``sys.stderr`` still captures the records.
    """
    if fmt not in ("text", "json"):
        raise ValueError(f"unknown log format {fmt!r}; use 'text' or 'json'")
    root = logging.getLogger(LOGGER_NAME)
    for handler in list(root.handlers):
        root.removeHandler(handler)
    handler = _StderrHandler()
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    root.addHandler(handler)
    root.setLevel(level.upper())
    root.propagate = False
    global _configured_format
    _configured_format = fmt


def json_logs_enabled() -> bool:
    """Whether ``configure_logging`` chose JSON lines: then human output (the run reporter)
    must go through logging too, so every stderr line stays one JSON object."""
    return _configured_format == "json"


class _StderrHandler(logging.StreamHandler):
    """A stream handler bound to whatever ``sys.stderr`` is at write time.

    On a terminal, text records first clear the line, so they never run into the run's live
    progress line (which the reporter redraws on its next update).
    """

    def __init__(self) -> None:
        super().__init__(sys.stderr)

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        return _CLEAR_LINE + text if isinstance(self.formatter, TextFormatter) and _isatty(self.stream) else text

    @property  # type: ignore[override]
    def stream(self) -> Any:
        return sys.stderr

    @stream.setter
    def stream(self, _value: Any) -> None:
        pass


_CLEAR_LINE = "\r\033[K"


def _isatty(stream: Any) -> bool:
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())
