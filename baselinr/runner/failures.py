"""Turn driver exceptions into one-line, secret-free ``TaskError``s, and the retry backoff.

Transient (worth retrying): lost connection, timeout, lock, deadlock, serialization failure,
SQLite "database is locked". Everything else (missing table, permission, bad SQL) is permanent.
"""

from __future__ import annotations

from typing import Iterable

from sqlalchemy import exc as sa_exc

from baselinr.config.models import RetryConfig
from baselinr.errors import TaskError
from baselinr.utils.logging import MASK, scrub_text

# PostgreSQL SQLSTATEs worth retrying: connection exceptions (class 08), serialization failure,
# deadlock, lock not available, query canceled (statement timeout), admin shutdown / crash,
# cannot connect now, too many connections.
_TRANSIENT_SQLSTATES = {"40001", "40P01", "55P03", "57014", "57P01", "57P02", "57P03", "53300"}
_SQLITE_TRANSIENT = ("database is locked", "database table is locked", "database is busy")


def scrub(text: str, secrets: Iterable[str] = ()) -> str:
    """``text`` with each known secret, URL passwords and ``password=...`` values masked."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, MASK)
    return scrub_text(text)


def is_transient(error: BaseException) -> bool:
    """Whether retrying the same work may succeed."""
    if isinstance(error, TaskError):
        return error.transient
    if isinstance(error, (sa_exc.DisconnectionError, sa_exc.TimeoutError, TimeoutError, ConnectionError)):
        return True
    if isinstance(error, sa_exc.DBAPIError):
        if error.connection_invalidated:
            return True
        orig = error.orig
        sqlstate = getattr(orig, "sqlstate", None)
        if sqlstate:
            return sqlstate.startswith("08") or sqlstate in _TRANSIENT_SQLSTATES
        message = str(orig).lower()
        if any(marker in message for marker in _SQLITE_TRANSIENT):
            return True
        # A driver OperationalError/InterfaceError without SQLSTATE: the server was not reached
        # or went away (psycopg, for example); SQLite reports bad SQL as OperationalError too.
        return isinstance(error, (sa_exc.OperationalError, sa_exc.InterfaceError)) and \
            type(orig).__module__.split(".")[0] != "sqlite3"
    return False


def as_task_error(error: BaseException, secrets: Iterable[str] = ()) -> TaskError:
    """A ``TaskError`` whose message is the first line of the driver's text, secrets masked."""
    if isinstance(error, TaskError):
        return error
    source = getattr(error, "orig", None) or error
    lines = str(source).strip().splitlines()
    message = scrub(lines[0] if lines else type(source).__name__, secrets)
    return TaskError(message, transient=is_transient(error), error_type=type(source).__name__)


def backoff_seconds(retry: RetryConfig, attempt: int) -> float:
    """Pause before attempt ``attempt + 1`` (``attempt`` counts from 1)."""
    if retry.backoff_strategy == "fixed":
        return min(retry.min_backoff, retry.max_backoff)
    return min(retry.max_backoff, retry.min_backoff * 2 ** (attempt - 1))


def max_attempts(retry: RetryConfig) -> int:
    return 1 + retry.retries if retry.enabled else 1
