"""One factory from a ``ConnectionConfig`` to a SQLAlchemy engine, pool sized for the run."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

from sqlalchemy import URL, create_engine as sa_create_engine, event
from sqlalchemy.engine import Engine
from sqlalchemy.exc import ArgumentError, NoSuchModuleError

from baselinr.config.models import FILE_WAREHOUSES, ConnectionConfig, ExecutionConfig
from baselinr.errors import WarehouseConnectionError

_DRIVERS = {
    "postgres": "postgresql+psycopg",
    "redshift": "redshift+redshift_connector",
    "mysql": "mysql+pymysql",
    "snowflake": "snowflake",
    "bigquery": "bigquery",
    "duckdb": "duckdb",
    "sqlite": "sqlite",
}
_EXTRA_FOR = {"mysql": "mysql", "snowflake": "snowflake", "bigquery": "bigquery", "redshift": "redshift", "duckdb": "duckdb"}
SQLITE_BUSY_TIMEOUT_S = 30


def build_url(conn: ConnectionConfig) -> URL:
    """The SQLAlchemy URL of a connection (password included: never log it, use ``safe_url``)."""
    drivername = _DRIVERS[conn.type]
    if conn.type in ("sqlite", "duckdb"):
        return URL.create(drivername, database=conn.filepath)
    query = {k: str(v) for k, v in conn.extra_params.items()}
    password = conn.password.get_secret_value() if conn.password else None
    if conn.type == "bigquery":
        # bigquery://<project>/<dataset>
        return URL.create(drivername, host=conn.database or conn.host, database=conn.schema_, query=query)
    database = conn.database
    if conn.type == "snowflake" and conn.schema_ and database:
        database = f"{database}/{conn.schema_}"
    return URL.create(drivername, username=conn.username, password=password, host=conn.host,
                      port=conn.port, database=database, query=query)


def safe_url(conn: ConnectionConfig) -> str:
    """The URL with the password masked, for messages."""
    return build_url(conn).render_as_string(hide_password=True)


def create_engine(conn: ConnectionConfig, execution: ExecutionConfig | None = None, *,
                  must_exist: bool = False) -> Engine:
    """Engine for a warehouse or the storage DB; raises ``WarehouseConnectionError`` on a missing driver.

    ``must_exist``: each connection first checks that a SQLite/DuckDB file is there (see
    ``require_file``) instead of letting the driver create an empty database in its place.
    """
    engine = _create_engine(conn, execution or ExecutionConfig())
    if must_exist and conn.type in FILE_WAREHOUSES:
        event.listen(engine, "do_connect", lambda *_args: require_file(conn))
    return engine


def require_file(conn: ConnectionConfig) -> None:
    """``WarehouseConnectionError`` when a file database is missing: connecting would create it empty."""
    if conn.type in FILE_WAREHOUSES and not Path(str(conn.filepath)).is_file():
        raise WarehouseConnectionError(f"database file {conn.filepath!r} not found")


def pool_settings(conn_type: str, execution: ExecutionConfig) -> dict[str, Any]:
    """Pool sizing: wider pools for parallel runs; file databases get one fitting their threading."""
    if conn_type in ("sqlite", "duckdb"):
        # A file database serialises writers anyway; a small pool of thread-checked-out
        # connections (check_same_thread off below) lets each worker use its own connection.
        return {"pool_size": max(execution.max_workers, 1) + 1, "max_overflow": 2}
    if execution.max_workers > 1:
        return {"pool_size": min(execution.max_workers + 2, 20), "max_overflow": execution.max_workers}
    return {"pool_size": 5, "max_overflow": 10}


def _create_engine(conn: ConnectionConfig, execution: ExecutionConfig) -> Engine:
    url = build_url(conn)
    kwargs: dict[str, Any] = {"pool_pre_ping": True, **pool_settings(conn.type, execution)}
    busy_timeout = SQLITE_BUSY_TIMEOUT_S if conn.busy_timeout is None else conn.busy_timeout
    if conn.type == "sqlite":
        kwargs["connect_args"] = {"check_same_thread": False, "timeout": busy_timeout}
        from sqlalchemy.pool import QueuePool

        kwargs["poolclass"] = QueuePool
    elif conn.type == "postgres":
        kwargs["connect_args"] = {"options": "-c timezone=UTC", "connect_timeout": 10}
    elif conn.type == "mysql":
        kwargs["connect_args"] = {"init_command": "SET time_zone = '+00:00'"}
    try:
        engine = sa_create_engine(url, **kwargs)
    except (NoSuchModuleError, ModuleNotFoundError, ImportError) as exc:
        extra = _EXTRA_FOR.get(conn.type)
        hint = f": pip install 'baselinr[{extra}]'" if extra else ""
        raise WarehouseConnectionError(f"the {conn.type} driver is not installed{hint} ({exc})") from None
    except ArgumentError as exc:
        raise WarehouseConnectionError(f"invalid {conn.type} connection settings: {exc}") from None
    if conn.type == "sqlite":
        event.listen(engine, "connect", functools.partial(_sqlite_on_connect, int(busy_timeout * 1000)))
    return engine


def _sqlite_on_connect(busy_timeout_ms: int, dbapi_conn: Any, _record: Any) -> None:
    cursor = dbapi_conn.cursor()
    cursor.execute(f"PRAGMA busy_timeout = {busy_timeout_ms:d}")  # an int: PRAGMA takes no bound parameters
    cursor.close()
