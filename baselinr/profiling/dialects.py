"""What differs between databases when profiling: functions, special float values, recovery.

Everything here builds SQLAlchemy Core expressions (identifiers quoted by SQLAlchemy); no SQL
text is assembled by hand. One ``Flavor`` per call of ``profile_table``, from
``conn.dialect.name``; unknown dialects get the ANSI choices (``stddev_samp``, CAST to text) and
recover from a failed statement by rolling back, which every warehouse supports.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction
from typing import Any, Literal

from sqlalchemy import (
    Float, Integer, Numeric, Text, TypeDecorator, case, cast, column, func, literal, table, type_coerce,
)
from sqlalchemy.dialects.sqlite.base import SQLiteDialect
from sqlalchemy.engine import Connection, Dialect
from sqlalchemy.sql import sqltypes
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.sql.expression import TableClause

from baselinr.connectors.catalog import ColumnInfo
from baselinr.profiling import sqlite_functions

Recovery = Literal["none", "savepoint", "rollback"]
NUMERIC = frozenset({"integer", "float", "decimal"})
# Databases whose FLOAT cannot hold NaN/±Infinity at all (MySQL refuses them on insert).
_NO_SPECIAL_FLOATS = frozenset({"mysql", "mariadb"})
_SQLITE = SQLiteDialect()
# DuckDB integer types of at most 64 bits: their exact standard deviation sums fit HUGEINT.
_DUCKDB_INT64 = frozenset({"TINYINT", "SMALLINT", "INTEGER", "BIGINT", "UTINYINT", "USMALLINT", "UINTEGER", "UBIGINT"})


@dataclass(frozen=True)
class Flavor:
    """Per-dialect expression builders. ``name`` is ``conn.dialect.name``."""

    name: str
    server_version: tuple[int, ...] = ()

    @classmethod
    def of(cls, conn: Connection) -> "Flavor":
        return cls(conn.dialect.name, tuple(conn.dialect.server_version_info or ()))

    @property
    def recovery(self) -> Recovery:
        """How to keep using the connection after a statement failed.

        SQLite: a failed SELECT leaves the transaction usable (and pysqlite's SAVEPOINT handling
        is unreliable). PostgreSQL aborts the whole transaction, so each statement runs in a
        SAVEPOINT. Others roll back (profiling only reads, so nothing is lost): DuckDB aborts
        like PostgreSQL but has no savepoints, and neither have Snowflake, BigQuery or Redshift.
        """
        if self.name == "sqlite":
            return "none"
        return "savepoint" if self.name == "postgresql" else "rollback"

    def prepare(self, conn: Connection) -> None:
        """Per-connection setup before profiling (SQLite: register the stddev aggregate)."""
        if self.name == "sqlite":
            sqlite_functions.register(conn.connection.driver_connection)

    def source(self, schema: str, name: str, columns: list[str]) -> TableClause:
        """The table to read; SQLite's schema ``main`` is written without a qualifier."""
        sa_schema = None if self.name == "sqlite" and schema == "main" else schema
        return table(name, *(column(c) for c in columns), schema=sa_schema)

    def stddev(self, info: ColumnInfo, value: ColumnElement) -> ColumnElement:
        """Sample standard deviation, as accurate as one scan allows (see ``sqlite_functions``, ``_exact_stddev``)."""
        if self.name == "sqlite":
            return getattr(func, sqlite_functions.STDDEV_SAMP)(value)
        if self.name == "duckdb" and info.type.upper() in _DUCKDB_INT64:
            return _exact_stddev(value)
        return func.stddev_samp(value)

    def comparable(self, info: ColumnInfo, value: ColumnElement) -> ColumnElement:
        """The column as its values compare (order, equality): SQLite timestamps as UTC text.

        SQLite keeps DATETIME/TIMESTAMP values as text that may carry UTC offsets; each becomes
        ``baselinr_utc(x)`` unless already in that form (checked natively, far cheaper than the
        Python call). Dates and times of day are left as they are: as text they already sort.
        """
        if self.name == "sqlite" and info.category == "temporal" and _sqlite_datetime(info.type):
            utc = getattr(func, sqlite_functions.UTC_TEXT)(value)
            return case((value.op("GLOB")(literal(sqlite_functions.UTC_TEXT_GLOB)), value), else_=utc)
        return value

    def as_text(self, value: ColumnElement) -> ColumnElement:
        """The value as text: lengths of enums, DISTINCT of types without equality (json, xml, point)."""
        return value if self.name == "sqlite" else cast(value, Text)

    def char_length(self, value: ColumnElement) -> ColumnElement:
        return func.char_length(self.as_text(value))

    def true_ratio(self, value: ColumnElement) -> ColumnElement:
        return func.avg(cast(value, Integer))

    @property
    def enforces_types(self) -> bool:
        """Whether a column holds only values of its declared type: SQLite keeps 2.5 in an INTEGER
        column and text in any (type affinity)."""
        return self.name != "sqlite"

    def non_numbers(self, category: str, value: ColumnElement) -> ColumnElement | None:
        """Condition true for a stored value of a numeric column that is no number; None when the
        column's type refuses such values.

        SQLite's type affinity keeps what does not look like a number as it is (text, blob), in
        any column: AVG and SUM would read it as 0, MIN and MAX sort it after every number.
        """
        if not self.enforces_types and category in NUMERIC:
            return func.typeof(value).in_(["text", "blob"])
        return None

    def nan_values(self, category: str) -> list[ColumnElement]:
        """Literals equal to NaN in a column of ``category``; empty when NaN cannot be stored.

        SQLite stores NaN as NULL, so it never holds one. PostgreSQL numeric holds 'NaN'.
        """
        if category == "float" and self.name not in _NO_SPECIAL_FLOATS and self.name != "sqlite":
            return [literal(math.nan, Float)]
        if category == "decimal" and self.name == "postgresql":
            return [cast(literal("NaN"), Numeric)]
        return []

    def inf_values(self, category: str) -> list[ColumnElement]:
        """Literals equal to +Infinity and -Infinity; empty when the column cannot hold them."""
        if category == "float" and self.name not in _NO_SPECIAL_FLOATS:
            return [literal(math.inf, Float), literal(-math.inf, Float)]
        # numeric accepts ±Infinity from PostgreSQL 14 on; earlier servers reject the literal.
        if category == "decimal" and self.name == "postgresql" and self.server_version[:1] >= (14,):
            return [cast(literal("Infinity"), Numeric), cast(literal("-Infinity"), Numeric)]
        return []


def _sqlite_datetime(type_name: str) -> bool:
    """Whether SQLAlchemy's SQLite reflection reads a declared type as a DateTime (not a Date or Time)."""
    return isinstance(_SQLITE._resolve_type_affinity(type_name), sqltypes.DateTime)


class _StdDevFromSums(TypeDecorator):
    """Reads ``[n, Σx, Σh², Σhl, Σl²]`` (each ``x = h·2^32 + l``) as the sample standard deviation."""

    impl = sqltypes.NullType
    cache_ok = True

    def process_result_value(self, value: Any, dialect: Dialect) -> float | None:
        n, total, hh, hl, ll = value
        if n < 2:
            return None
        squares = (hh << 64) + (hl << 33) + ll  # Σx², exact
        return math.sqrt(Fraction(n * squares - total * total, n * (n - 1)))


def _exact_stddev(value: ColumnElement) -> ColumnElement:
    """DuckDB integers' sample standard deviation from exact sums, in the same single scan.

    DuckDB's stddev_samp converts to DOUBLE first: bigints near 2^63 (ulp 2048) lose their spread.
    Σx² does not fit HUGEINT there, so each value is split into ``h = x >> 32`` and
    ``l = x & (2^32 - 1)`` and the database sums ``h²``, ``h·l``, ``l²`` (each below 2^64) and ``x``
    exactly in HUGEINT (an overflow would raise, past 2^63 rows). ``(nΣx² - (Σx)²) / (n(n-1))`` is then
    computed in Python integers, so nothing cancels: the only rounding is the final float and sqrt.
    """
    from duckdb_engine.datatypes import HugeInteger  # DuckDB is optional; its engine is loaded here

    x = cast(value, HugeInteger)
    high, low = x.op(">>")(32), x.op("&")(2**32 - 1)
    sums = func.list_value(func.count(x), func.sum(x), func.sum(high * high), func.sum(high * low),
                           func.sum(low * low))
    return type_coerce(sums, _StdDevFromSums())
