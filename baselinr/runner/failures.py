"""Turn driver exceptions into one-line, secret-free ``TaskError``s, and the retry backoff.

Whether an error is transient (worth retrying) is ``baselinr.connectors.errors.is_transient``,
which profiling uses too.
"""

from __future__ import annotations

from typing import Iterable

from baselinr.config.models import RetryConfig
from baselinr.connectors.errors import is_transient
from baselinr.errors import TaskError
from baselinr.utils.logging import MASK, scrub_text


def scrub(text: str, secrets: Iterable[str] = ()) -> str:
    """``text`` with each known secret, URL passwords and ``password=...`` values masked."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, MASK)
    return scrub_text(text)


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
