"""Gather the catalog a config needs: reflect only the schemas its selections read.

This is the I/O half of ``baselinr plan``; ``planner.compile`` is the pure half.
"""

from __future__ import annotations

from pydantic import SecretStr

from baselinr.config.models import BaselinrConfig, TableSelection
from baselinr.connectors.catalog import Catalog, TableInfo, inspect_schema
from baselinr.connectors.factory import create_engine, require_file
from baselinr.errors import ConfigError, WarehouseConnectionError


def selection_schema(config: BaselinrConfig, index: int, selection: TableSelection) -> str:
    """The schema a selection reads: its own, else its warehouse's default (MySQL: the database)."""
    conn = config.warehouses[config.warehouse_for(selection)]
    schema = selection.schema_ or conn.default_schema or (conn.database if conn.type == "mysql" else None)
    if schema is None:
        raise ConfigError(f"profiling.tables[{index}]: no schema given and a {conn.type} warehouse has no "
                          f"default one; add 'schema:'")
    return schema


def needed_schemas(config: BaselinrConfig) -> dict[str, list[str]]:
    """Warehouse name -> sorted schemas the selections read (each reflected once)."""
    needed: dict[str, set[str]] = {}
    for i, sel in enumerate(config.profiling.tables):
        needed.setdefault(config.warehouse_for(sel), set()).add(selection_schema(config, i, sel))
    return {name: sorted(schemas) for name, schemas in sorted(needed.items())}


def gather_catalog(config: BaselinrConfig) -> Catalog:
    """Reflect every schema the config's selections need; engines are disposed before returning.

    Raises ``WarehouseConnectionError`` naming the warehouse when it cannot be reached (a
    missing SQLite/DuckDB file included: connecting would silently create an empty one). Tables
    that cannot be reflected are left out and named in ``Catalog.warnings``.
    """
    tables: list[TableInfo] = []
    warnings: list[str] = []
    warehouses = config.warehouses
    for name, schemas in needed_schemas(config).items():
        conn = warehouses[name]
        try:
            require_file(conn)
            engine = create_engine(conn, config.execution)
        except WarehouseConnectionError as exc:
            raise WarehouseConnectionError(f"warehouse {name!r}: {_without_secret(str(exc), conn.password)}") from None
        try:
            for schema in schemas:
                left_out: list[str] = []
                tables.extend(inspect_schema(engine, name, schema, left_out))
                warnings.extend(_without_secret(w, conn.password) for w in left_out)
        except WarehouseConnectionError as exc:
            raise WarehouseConnectionError(_without_secret(str(exc), conn.password)) from None
        finally:
            engine.dispose()
    return Catalog(tables=tables, warehouse_types={name: conn.type for name, conn in sorted(warehouses.items())},
                   warnings=warnings)


def _without_secret(message: str, password: SecretStr | None) -> str:
    """Drivers may echo connection strings; never let the password through."""
    secret = password.get_secret_value() if password is not None else ""
    return message.replace(secret, "***") if secret else message
