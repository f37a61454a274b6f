"""A numerically stable sample standard deviation for SQLite, which has no STDDEV.

The textbook one-pass formula ``(Σx² - (Σx)²/n) / (n-1)`` cancels catastrophically when the
spread is tiny next to the values (1e9 ± 0.01 comes out 0 or negative), and SQLite's SUM of
big integers raises "integer overflow". Instead each connection gets a Python aggregate
running Welford's update over values shifted by the first one seen: ``x - shift`` is exact
for integers (Python ints do not overflow, so bigints near 2^63 lose nothing before the
subtraction) and small for clustered data, so the result stays one table scan and accurate.
"""

from __future__ import annotations

import math
import sqlite3

STDDEV_SAMP = "baselinr_stddev_samp"


class _SampleStdDev:
    """Welford's running mean/M2 over ``value - first value``; None below two values."""

    __slots__ = ("n", "shift", "mean", "m2")

    def __init__(self) -> None:
        self.n = 0
        self.shift: float | int = 0
        self.mean = 0.0
        self.m2 = 0.0

    def step(self, value: float | int | None) -> None:
        if value is None:
            return
        if self.n == 0:
            self.shift = value
        self.n += 1
        x = value - self.shift
        delta = x - self.mean
        self.mean += delta / self.n
        self.m2 += delta * (x - self.mean)

    def finalize(self) -> float | None:
        if self.n < 2:
            return None
        return math.sqrt(self.m2 / (self.n - 1))


def register(dbapi_connection: sqlite3.Connection) -> None:
    """Make ``baselinr_stddev_samp(x)`` available on this SQLite connection (idempotent)."""
    dbapi_connection.create_aggregate(STDDEV_SAMP, 1, _SampleStdDev)
