"""The ``sql`` hook: every event becomes one row of ``baselinr_events`` (``table_name``).

The table is created once, when the hook is built (``CREATE TABLE IF NOT EXISTS`` semantics).
Rows are written by the hook's single sender thread (see ``QueuedHook``): workers never wait on
the database, rows keep emission order, and each batch of queued events is one short
transaction on one pooled connection — safe with any number of workers and on SQLite.
Metadata is stored as JSON text (already scrubbed of secrets by the bus); timestamps are
timezone-aware UTC.
"""

from __future__ import annotations

import json

from sqlalchemy import Column, DateTime, MetaData, String, Table, Text, inspect
from sqlalchemy.exc import SQLAlchemyError

from baselinr.config.models import ConnectionConfig
from baselinr.connectors.factory import create_engine, safe_url
from baselinr.errors import WarehouseConnectionError
from baselinr.events.bus import BaseEvent
from baselinr.events.hooks import QueuedHook, Stamped
from baselinr.storage.schema import BIG
from baselinr.utils.logging import RunContext, scrub_text


def events_table(name: str = "baselinr_events", metadata: MetaData | None = None) -> Table:
    """The events table: id, event_type, timestamp (tz-aware), run_id, environment, task_id, metadata (JSON)."""
    return Table(
        name, metadata or MetaData(),
        Column("id", BIG, primary_key=True, autoincrement=True),  # every event of every run: outgrows 2^31
        Column("event_type", String(64), nullable=False),
        Column("timestamp", DateTime(timezone=True), nullable=False),
        Column("run_id", String(64), nullable=True),
        Column("environment", String(128), nullable=True),
        Column("task_id", String(1600), nullable=True, comment="metadata task_id, else table"),
        Column("metadata", Text, nullable=False, comment="JSON object"),
    )


class SqlHook(QueuedHook):
    """Writes each event as one row of ``table_name`` in the ``connection`` database."""

    name = "sql"

    def __init__(self, connection: ConnectionConfig, table_name: str = "baselinr_events", *,
                 where: str = "hook", context: RunContext | None = None) -> None:
        self.engine = create_engine(connection)
        self.table = events_table(table_name)
        try:
            self.table.metadata.create_all(self.engine, checkfirst=True)
        except SQLAlchemyError as exc:
            if not self._created_concurrently():
                self.engine.dispose()
                reason = scrub_text(str(getattr(exc, "orig", None) or exc)).splitlines()[0]
                raise WarehouseConnectionError(f"{where}.connection: cannot create table {table_name!r} "
                                               f"in {safe_url(connection)}: {reason}") from None
        super().__init__(context)

    def _created_concurrently(self) -> bool:
        """Whether another process created the table between our check and our CREATE."""
        try:
            return inspect(self.engine).has_table(self.table.name)
        except SQLAlchemyError:
            return False

    def deliver(self, events: list[Stamped]) -> None:
        rows = [_row(event, context) for event, context in events]
        with self.engine.begin() as conn:
            conn.execute(self.table.insert(), rows)

    def close(self) -> None:
        super().close()
        self.engine.dispose()


def _row(event: BaseEvent, context: RunContext) -> dict[str, object]:
    task_id = event.metadata.get("task_id") or event.metadata.get("table")
    return {"event_type": event.event_type, "timestamp": event.timestamp, "run_id": context.run_id,
            "environment": context.environment, "task_id": str(task_id) if task_id is not None else None,
            "metadata": json.dumps(event.metadata, default=str, sort_keys=True)}
