"""Storage: the results/runs tables and the runner's state tables in one database."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError

from baselinr.config.models import StorageConfig
from baselinr.connectors.factory import create_engine
from baselinr.errors import WarehouseConnectionError
from baselinr.storage.results import decode_metric, encode_metric, write_result
from baselinr.storage.schema import StorageTables, build_tables


@dataclass
class Storage:
    engine: Engine
    tables: StorageTables


def open_storage(config: StorageConfig) -> Storage:
    """Engine and tables of the storage database, creating the tables when configured to."""
    conn = config.connection
    if conn.type == "sqlite" and conn.filepath:
        Path(conn.filepath).parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(conn)
    if conn.type == "sqlite":
        # WAL lets status readers and the runner's writer work at once without "database is locked".
        event.listen(engine, "connect", lambda dbapi, _rec: dbapi.execute("PRAGMA journal_mode=WAL"))
    tables = build_tables(config.results_table, config.runs_table)
    if config.create_tables:
        try:
            tables.metadata.create_all(engine)
        except SQLAlchemyError as exc:
            raise WarehouseConnectionError(
                f"storage database unavailable: {str(getattr(exc, 'orig', exc)).strip().splitlines()[0]}") from None
    return Storage(engine, tables)


__all__ = ["Storage", "StorageTables", "build_tables", "decode_metric", "encode_metric", "open_storage", "write_result"]
