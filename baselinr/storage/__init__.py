"""Storage: the results/runs tables and the runner's state tables in one database."""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError

from baselinr.config.models import StorageConfig
from baselinr.connectors.factory import create_engine
from baselinr.errors import WarehouseConnectionError
from baselinr.storage.results import decode_metric, encode_metric, read_run_results, write_result
from baselinr.storage.schema import StorageTables, build_tables


@dataclass
class Storage:
    engine: Engine
    tables: StorageTables


def open_storage(config: StorageConfig) -> Storage:
    """Engine and tables of the storage database, creating the tables when configured to."""
    conn = config.connection
    if conn.type == "sqlite" and conn.filepath:
        folder = Path(conn.filepath).parent
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise WarehouseConnectionError(f"storage database {conn.filepath}: cannot create its folder {folder}: "
                                           f"{exc.strerror}") from None
    engine = create_engine(conn)
    if conn.type == "sqlite":
        # WAL lets status readers and the runner's writer work at once without "database is locked".
        event.listen(engine, "connect", lambda dbapi, _rec: dbapi.execute("PRAGMA journal_mode=WAL"))
        # synchronous=NORMAL: no fsync per commit (5 ms each here, 3 per task). A commit still
        # survives kill -9; only an OS crash may roll back the latest ones, consistently (results
        # and their "succeeded" mark share a transaction), which costs a rerun, never a wrong answer.
        event.listen(engine, "connect", lambda dbapi, _rec: dbapi.execute("PRAGMA synchronous=NORMAL"))
    tables = build_tables(config.results_table, config.runs_table)
    if config.create_tables:
        with storage_errors():
            tables.metadata.create_all(engine)
    return Storage(engine, tables)


@contextmanager
def storage_errors() -> Iterator[None]:
    """Turn a database error of the storage DB (down, locked past its busy timeout, missing
    tables) into a one-line ``WarehouseConnectionError``. Also usable as a decorator."""
    try:
        yield
    except SQLAlchemyError as exc:
        lines = str(getattr(exc, "orig", None) or exc).strip().splitlines()
        raise WarehouseConnectionError(f"storage database unavailable: {lines[0] if lines else type(exc).__name__}") \
            from None


__all__ = ["Storage", "StorageTables", "build_tables", "decode_metric", "encode_metric", "open_storage", "read_run_results",
           "storage_errors", "write_result"]
