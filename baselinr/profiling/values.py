"""Turn raw aggregate values from any driver into JSON-safe metric values.

Contract: the result is None, bool, int, finite float, Decimal (finite, exact), str, or an ISO
temporal (``datetime`` time-zone-aware in UTC, ``date``, ``time``); anything else becomes its
string form. Non-finite numbers are refused with a reason (they cannot be stored as JSON).
"""

from __future__ import annotations

import math
from datetime import date, datetime, time, timezone
from decimal import Decimal
from typing import Any

_FLOAT_AGGREGATES = frozenset({"mean", "stddev", "avg_length"})


def clean(aggregate: str, category: str, value: Any) -> tuple[Any, str | None]:
    """(JSON-safe value, None) or (None, reason) for one raw aggregate of a column."""
    if value is None:
        return None, None
    if aggregate in _FLOAT_AGGREGATES:
        value = float(value)
    elif category == "temporal" and aggregate in ("min", "max"):
        value = to_temporal(value)
    if _non_finite(value):
        return None, f"{aggregate} is not a finite number ({value}): the values overflow"
    if isinstance(value, (bool, int, float, Decimal, str, datetime, date, time)):
        return value, None
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value).hex(), None
    return str(value), None


def _non_finite(value: Any) -> bool:
    if isinstance(value, Decimal):
        return not value.is_finite()
    return isinstance(value, float) and not math.isfinite(value)


def to_temporal(value: Any) -> Any:
    """Datetimes as aware UTC (naive ones were read in a UTC session); ISO strings (SQLite) parsed."""
    if isinstance(value, str):
        value = _parse_iso(value)
    if isinstance(value, datetime):
        return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value.astimezone(timezone.utc)
    return value


def _parse_iso(text: str) -> Any:
    """SQLite keeps temporals as text: a date, a time of day, or a datetime; else the text itself."""
    try:
        if len(text) == 10 and text[4] == "-":
            return date.fromisoformat(text)
        if ":" in text and "-" not in text[:8]:
            return time.fromisoformat(text)
        return datetime.fromisoformat(text)
    except ValueError:
        return text
