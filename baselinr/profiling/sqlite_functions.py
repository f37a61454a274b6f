"""SQLite functions Baselinr registers per connection: a stable STDDEV, and UTC timestamps.

SQLite has no STDDEV. The textbook one-pass formula ``(Σx² - (Σx)²/n) / (n-1)`` cancels
catastrophically when the spread is tiny next to the values (1e9 ± 0.01 comes out 0 or
negative), and SQLite's SUM of big integers raises "integer overflow". Instead each connection
gets a Python aggregate running Welford's update over values shifted by the first one seen:
``x - shift`` is exact for integers (Python ints do not overflow, so bigints near 2^63 lose
nothing before the subtraction) and small for clustered data, so the result stays one table
scan and accurate.

SQLite has no timestamp type either: a DATETIME column holds text, possibly with UTC offsets,
which compares as text, not as instants. ``baselinr_utc(x)`` rewrites one value as UTC text in
the fixed-width form SQLAlchemy stores (``YYYY-MM-DD HH:MM:SS.ffffff``), so text order is time
order; values without an offset are taken as UTC, text that is no timestamp is returned as is.
SQLite's own ``strftime``/``julianday`` would round to milliseconds.
"""

from __future__ import annotations

import math
import sqlite3
from datetime import datetime, timezone
from typing import Any

STDDEV_SAMP = "baselinr_stddev_samp"
UTC_TEXT = "baselinr_utc"
# GLOB matching the form ``utc_text`` returns: values already in it need no Python call.
UTC_TEXT_GLOB = "0000-00-00 00:00:00.000000".replace("0", "[0-9]")


class _SampleStdDev:
    """Welford's running mean/M2 over ``value - first value``; None below two values."""

    __slots__ = ("n", "shift", "mean", "m2")

    def __init__(self) -> None:
        self.n = 0
        self.shift: float | int = 0
        self.mean = 0.0
        self.m2 = 0.0

    def step(self, value: float | int | str | bytes | None) -> None:
        if value is None:
            return
        if self.n == 0:
            self.shift = value
        try:
            x = value - self.shift
        except TypeError:  # text or a blob in a numeric column (SQLite keeps them): no number, skipped
            return
        self.n += 1
        delta = x - self.mean
        self.mean += delta / self.n
        self.m2 += delta * (x - self.mean)

    def finalize(self) -> float | None:
        if self.n < 2:
            return None
        result = math.sqrt(self.m2 / (self.n - 1))
        # Finite inputs give NaN only when the running sums overflowed; SQLite would turn NaN into
        # NULL (a silent "no value"), whereas infinity reaches the caller, which reports the overflow.
        return result if math.isfinite(result) else math.inf


def utc_text(value: Any) -> Any:
    """An ISO timestamp as naive UTC text ``YYYY-MM-DD HH:MM:SS.ffffff``; other values unchanged."""
    if not isinstance(value, str):
        return value
    try:
        stamp = datetime.fromisoformat(value)
    except ValueError:
        return value
    if stamp.tzinfo is not None:
        stamp = stamp.astimezone(timezone.utc).replace(tzinfo=None)
    return stamp.isoformat(" ", "microseconds")


def register(dbapi_connection: sqlite3.Connection) -> None:
    """Make ``baselinr_stddev_samp(x)`` and ``baselinr_utc(x)`` available on this connection (idempotent)."""
    dbapi_connection.create_aggregate(STDDEV_SAMP, 1, _SampleStdDev)
    dbapi_connection.create_function(UTC_TEXT, 1, utc_text, deterministic=True)
