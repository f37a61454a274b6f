"""Run many aggregates over one table in as few scans as possible, isolating failures.

Items are fused into one ``SELECT agg1, agg2, ... FROM t`` per chunk of ``MAX_SELECT_ITEMS``
(PostgreSQL caps a select list at 1664 entries; SQLite at 2000 result columns by default), so a
table costs one scan per chunk. When a fused select fails:

- errors of the connection or of the whole statement are re-raised as they are, failing the
  table: every transient one (``connectors.errors.is_transient``: lost connection, SQLite's
  "database is locked", timeout, interrupted, deadlock...), so the runner retries the table
  rather than storing a metric as failed, and on PostgreSQL any OperationalError (out of memory);
- otherwise a probe ``SELECT count(*) FROM t`` (once per table) tells a broken table (missing,
  no privilege: the probe's own error is raised) from a broken aggregate; the chunk is then
  bisected between columns, and a failing column's items are tried one by one, so each failing
  item gets the database's reason. A broken column among n costs about 2*log2(n) + its items
  extra selects (column-level errors usually break every aggregate of the column).

The connection stays usable after a failure: see ``Flavor.recovery``.
"""

from __future__ import annotations

from typing import Any, Iterator

from sqlalchemy import func, select
from sqlalchemy.engine import Connection, Row
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.sql import Select
from sqlalchemy.sql.expression import TableClause

from baselinr.connectors.errors import is_transient
from baselinr.profiling.aggregates import Item
from baselinr.profiling.dialects import Flavor

MAX_SELECT_ITEMS = 1500
_REASON_CHARS = 300

Key = tuple[int, str]


class FusedRunner:
    """Executes fused selects on one connection and table; counts the statements it reads with."""

    def __init__(self, conn: Connection, flavor: Flavor, source: TableClause) -> None:
        self.conn = conn
        self.flavor = flavor
        self.source = source
        self.queries = 0  # data statements (SAVEPOINT bookkeeping is not counted)
        self._table_ok = False
        # An autocommit connection has no transaction to abort (and refuses SAVEPOINT).
        autocommit = bool(getattr(conn.connection.driver_connection, "autocommit", False))
        self._savepoints = flavor.recovery == "savepoint" and not autocommit

    def run(self, items: list[Item]) -> tuple[dict[Key, Any], dict[Key, str]]:
        """(value by item key, failure reason by item key) for every item."""
        values: dict[Key, Any] = {}
        errors: dict[Key, str] = {}
        for chunk in _chunks(items, MAX_SELECT_ITEMS):
            self._run(chunk, values, errors)
        return values, errors

    def _run(self, items: list[Item], values: dict[Key, Any], errors: dict[Key, str]) -> None:
        stmt = select(*(item.expr.label(f"a{n}") for n, item in enumerate(items))).select_from(self.source)
        try:
            row = self._execute(stmt)
        except DBAPIError as exc:
            if self._whole_statement_error(exc):
                raise
            self._check_table()
            if len(items) == 1:
                errors[items[0].key] = reason(exc)
                return
            for part in _split(items):
                self._run(part, values, errors)
            return
        self._table_ok = True
        values.update(zip((item.key for item in items), row))

    def _execute(self, stmt: Select) -> Row:
        self.queries += 1
        if self._savepoints:
            with self.conn.begin_nested():
                return self.conn.execute(stmt).one()
        try:
            return self.conn.execute(stmt).one()
        except DBAPIError:
            if self.flavor.recovery == "rollback" and self.conn.in_transaction() and not self.conn.invalidated:
                self.conn.rollback()
            raise

    def _whole_statement_error(self, exc: DBAPIError) -> bool:
        return is_transient(exc) or (self.flavor.name == "postgresql" and isinstance(exc, OperationalError))

    def _check_table(self) -> None:
        """Raise the table's own error if even ``count(*)`` fails on it (at most once per table)."""
        if not self._table_ok:
            self._execute(select(func.count()).select_from(self.source))
            self._table_ok = True


def reason(exc: DBAPIError) -> str:
    """The database's message, first line only (no SQL text, no parameters)."""
    text = str(exc.orig if exc.orig is not None else exc).strip()
    line = text.splitlines()[0] if text else type(exc.orig or exc).__name__
    return line[:_REASON_CHARS]


def _split(items: list[Item]) -> list[list[Item]]:
    """Halves at the column boundary nearest the middle; single items within one column."""
    bounds = [i for i in range(1, len(items)) if items[i].key[0] != items[i - 1].key[0]]
    if not bounds:
        return [[item] for item in items]
    cut = min(bounds, key=lambda i: abs(2 * i - len(items)))
    return [items[:cut], items[cut:]]


def _chunks(items: list[Item], size: int) -> Iterator[list[Item]]:
    for start in range(0, len(items), size):
        yield items[start:start + size]
