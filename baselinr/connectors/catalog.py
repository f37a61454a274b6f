"""The catalog: what tables, views and columns a warehouse holds, as plain data.

The planner compiles against a ``Catalog`` and never touches a database itself; this module
is the only place that reflects warehouses. Reflection is bulk (one ``get_multi_columns``
per schema; on SQLite, whose dialect issues one PRAGMA per table, one query over
``sqlite_master`` joined with ``pragma_table_xinfo``), so schemas with thousands of tables
cost a handful of queries, not one per table.
A table or view that cannot be reflected (a SQLite view over a dropped table) is left out with
a warning naming it; only when the schema itself cannot be listed is it an error.
"""

from __future__ import annotations

import hashlib
import json
import logging
from contextlib import contextmanager
from typing import Iterable, Iterator, Literal

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import BigInteger, cast, column, func, inspect, select, table, true
from sqlalchemy.sql import sqltypes
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.engine.reflection import ObjectKind
from sqlalchemy.exc import DBAPIError, NoSuchTableError, SQLAlchemyError

from baselinr.errors import WarehouseConnectionError

logger = logging.getLogger("baselinr.catalog")

TableKind = Literal["table", "view", "materialized_view"]
ColumnCategory = Literal["integer", "float", "decimal", "boolean", "string", "temporal", "binary", "other"]


class ColumnInfo(BaseModel):
    model_config = ConfigDict(frozen=True)

    name: str
    type: str = Field(description="The type as the database names it (compiled by its dialect).")
    category: ColumnCategory = Field(description="What metrics apply, decided from SQLAlchemy type classes.")
    nullable: bool = True


class TableInfo(BaseModel):
    model_config = ConfigDict(frozen=True, populate_by_name=True)

    warehouse: str
    schema_: str = Field(alias="schema")
    name: str
    kind: TableKind = "table"
    columns: tuple[ColumnInfo, ...] = ()
    estimated_rows: int | None = None

    @property
    def fingerprint(self) -> str:
        return schema_fingerprint(self.columns)


class Catalog(BaseModel):
    """Every table the planner may select, from every warehouse of the config."""

    tables: list[TableInfo] = Field(default_factory=list)
    warehouse_types: dict[str, str] = Field(default_factory=dict)
    warnings: list[str] = Field(default_factory=list, description="Objects left out, and why (for the plan).")


def schema_fingerprint(columns: Iterable[ColumnInfo]) -> str:
    """sha256 over (name, type) pairs in table order: changes when a column is added, dropped, retyped."""
    body = json.dumps([[c.name, c.type] for c in columns], separators=(",", ":"))
    return hashlib.sha256(body.encode()).hexdigest()[:16]


def categorize(type_: sqltypes.TypeEngine) -> ColumnCategory:
    """Metric family of a reflected type, by SQLAlchemy type class (never by type-name substrings)."""
    if isinstance(type_, sqltypes.Boolean):
        return "boolean"
    if isinstance(type_, sqltypes._AbstractInterval):
        return "other"
    if isinstance(type_, sqltypes.Integer):
        return "integer"
    if isinstance(type_, sqltypes.Float):
        return "float"
    if isinstance(type_, sqltypes.Numeric):
        return "decimal"
    if isinstance(type_, (sqltypes.String, sqltypes.Enum)):
        return "string"
    if isinstance(type_, (sqltypes.Date, sqltypes.DateTime, sqltypes.Time)):
        return "temporal"
    if isinstance(type_, sqltypes._Binary):
        return "binary"
    return "other"


def type_name(type_: sqltypes.TypeEngine, bind: Engine | Connection) -> str:
    try:
        return type_.compile(dialect=bind.dialect)
    except Exception:  # noqa: BLE001 - some reflected types (NullType) cannot compile
        return str(type(type_).__name__).upper()


def inspect_schema(engine: Engine, warehouse: str, schema: str, warnings: list[str] | None = None) -> list[TableInfo]:
    """All tables, views and materialized views of one schema with their columns.

    An object whose columns cannot be read is left out, with a message naming it appended to
    ``warnings`` (logged when None). Raises ``WarehouseConnectionError`` when the schema cannot be listed.
    """
    left_out: list[tuple[TableKind, str, str]] = []
    sa_schema = _sa_schema(engine, schema)
    dialect = engine.dialect.name
    try:
        listed = (_duckdb_listing(engine, schema) if dialect == "duckdb"
                  else _sqlite_listing(engine, sa_schema) if dialect == "sqlite" else None)
        if listed is None:  # SQLite's get_multi_columns is a PRAGMA per table: go object by object
            listed = _reflect(engine, sa_schema, left_out, multi=dialect != "sqlite")
        estimates = _estimated_rows(engine, schema)
    except SQLAlchemyError as exc:
        raise WarehouseConnectionError(f"warehouse {warehouse!r}: cannot list schema {schema!r}: "
                                       f"{_first_line(exc)}") from None
    for kind, name, reason in left_out:
        message = (f"warehouse {warehouse!r}: {kind.replace('_', ' ')} {schema}.{name} left out: "
                   f"cannot read its columns: {reason}")
        if warnings is None:
            logger.warning("%s", message)
        else:
            warnings.append(message)
    tables = [TableInfo(warehouse=warehouse, schema=schema, name=name, kind=kind,
                        columns=_column_infos(cols, engine), estimated_rows=estimates.get(name))
              for name, (kind, cols) in listed.items()]
    return sorted(tables, key=lambda t: t.name)


def _sa_schema(bind: Engine | Connection, schema: str) -> str | None:
    """SQLAlchemy's name for a schema: SQLite's ``main`` is the default (None), which also finds temp tables."""
    return None if bind.dialect.name == "sqlite" and schema == "main" else schema


Listing = dict[str, tuple[TableKind, list[dict]]]  # object name -> (kind, columns as SQLAlchemy reflects them)


def _sqlite_listing(engine: Engine, sa_schema: str | None) -> Listing | None:
    """Every table and view with its columns in one query, built as SQLAlchemy's SQLite dialect
    builds them from ``PRAGMA table_xinfo`` (same types, nullability, hidden columns skipped).

    None when the query fails (one unreadable object fails it all; SQLite before 3.31 has no
    ``table_xinfo``): the caller then reflects object by object.
    """
    master = table("sqlite_master", column("type"), column("name"), schema=sa_schema).alias("m")
    info = (func.pragma_table_xinfo(master.c.name, sa_schema or "main")
            .table_valued("cid", "name", "type", "notnull", "hidden").alias("p"))
    query = (select(master.c.name.label("object"), master.c.type.label("kind"), info.c.name, info.c.type,
                    info.c.notnull, info.c.hidden)
             .select_from(master.outerjoin(info, true()))
             .where(master.c.type.in_(["table", "view"]), master.c.name.not_like("sqlite~_%", escape="~"))
             .order_by(master.c.name, info.c.cid))
    try:
        with engine.connect() as conn:
            rows = conn.execute(query).all()
    except SQLAlchemyError as exc:
        _raise_if_disconnected(exc)
        logger.debug("bulk SQLite listing failed, reflecting object by object: %s", _first_line(exc))
        return None
    listed: Listing = {}
    for obj, kind, name, type_, notnull, hidden in rows:
        columns = listed.setdefault(obj, ("view" if kind == "view" else "table", []))[1]
        if name is not None and hidden != 1:  # 1: a virtual table's hidden column; 2, 3: generated
            columns.append(engine.dialect._get_column_info(  # the dialect's own parsing of the declared type
                name, type_.upper(), not notnull, None, 0, bool(hidden), hidden == 3, None))
    return listed


def _reflect(engine: Engine, sa_schema: str | None, left_out: list[tuple[TableKind, str, str]],
             multi: bool = True) -> Listing:
    """The schema by SQLAlchemy's inspector: one bulk ``get_multi_columns`` (when ``multi``), else or
    when that fails one ``get_columns`` per object, each object that fails added to ``left_out``."""
    insp = inspect(engine)
    kinds: dict[str, TableKind] = {name: "table" for name in insp.get_table_names(schema=sa_schema)}
    kinds.update({name: "view" for name in insp.get_view_names(schema=sa_schema)})
    try:
        kinds.update({name: "materialized_view" for name in insp.get_materialized_view_names(schema=sa_schema)})
    except NotImplementedError:
        pass
    if not kinds:
        return {}
    if multi:
        try:
            found = insp.get_multi_columns(schema=sa_schema, kind=ObjectKind.ANY)
            return {name: (kinds[name], cols) for (_, name), cols in found.items() if name in kinds}
        except SQLAlchemyError as exc:
            _raise_if_disconnected(exc)
    listed: Listing = {}
    for name, kind in sorted(kinds.items()):
        try:
            listed[name] = (kind, insp.get_columns(name, schema=sa_schema))
        except SQLAlchemyError as exc:
            _raise_if_disconnected(exc)
            left_out.append((kind, name, _first_line(exc)))
    return listed


def _raise_if_disconnected(exc: SQLAlchemyError) -> None:
    """A lost connection is the schema's failure, not one object's."""
    if isinstance(exc, DBAPIError) and exc.connection_invalidated:
        raise exc


def _column_infos(cols: Iterable[dict], bind: Engine | Connection) -> tuple[ColumnInfo, ...]:
    return tuple(ColumnInfo(name=c["name"], type=c.get("type_name") or type_name(c["type"], bind),
                            category=categorize(c["type"]), nullable=bool(c.get("nullable", True))) for c in cols)


def inspect_table(bind: Engine | Connection, warehouse: str, schema: str, table: str) -> TableInfo | None:
    """One table's current columns (the runner, on its own connection, detects a stale plan); None if gone."""
    if bind.dialect.name == "duckdb":
        listed = _duckdb_listing(bind, schema, only=table)
        if table not in listed:
            return None
        cols = listed[table][1]
    else:
        try:
            cols = inspect(bind).get_columns(table, schema=_sa_schema(bind, schema))
        except NoSuchTableError:
            return None
    return TableInfo(warehouse=warehouse, schema=schema, name=table, columns=_column_infos(cols, bind))


@contextmanager
def _connection(bind: Engine | Connection) -> Iterator[Connection]:
    """The connection itself, or a new one from the engine (closed after)."""
    if isinstance(bind, Connection):
        yield bind
    else:
        with bind.connect() as conn:
            yield conn


# DuckDB's SQLAlchemy dialect reflects through pg_catalog views that DuckDB does not fully
# provide, so DuckDB is read from information_schema (one query per schema) and its type names
# mapped to SQLAlchemy type classes here.
_DUCKDB_TYPES: dict[str, type[sqltypes.TypeEngine]] = {
    **dict.fromkeys(["BOOLEAN", "BOOL"], sqltypes.Boolean),
    **dict.fromkeys(["TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT", "UTINYINT", "USMALLINT",
                     "UINTEGER", "UBIGINT", "UHUGEINT"], sqltypes.BigInteger),
    **dict.fromkeys(["FLOAT", "REAL", "DOUBLE"], sqltypes.Float),
    **dict.fromkeys(["DECIMAL", "NUMERIC"], sqltypes.Numeric),
    **dict.fromkeys(["VARCHAR", "TEXT", "STRING", "CHAR", "BPCHAR"], sqltypes.String),
    "DATE": sqltypes.Date, "TIME": sqltypes.Time, "INTERVAL": sqltypes.Interval,
    **dict.fromkeys(["TIMESTAMP", "TIMESTAMP WITH TIME ZONE", "TIMESTAMPTZ", "TIMESTAMP_S", "TIMESTAMP_MS",
                     "TIMESTAMP_NS", "DATETIME"], sqltypes.DateTime),
    **dict.fromkeys(["BLOB", "BYTEA"], sqltypes.LargeBinary),
    "UUID": sqltypes.Uuid, "JSON": sqltypes.JSON,
}
_IS_TABLES = table("tables", column("table_schema"), column("table_name"), column("table_type"),
                   schema="information_schema")
_IS_COLUMNS = table("columns", column("table_schema"), column("table_name"), column("column_name"),
                    column("data_type"), column("is_nullable"), column("ordinal_position"),
                    schema="information_schema")


def _duckdb_listing(bind: Engine | Connection, schema: str, only: str | None = None) -> Listing:
    tables_q = select(_IS_TABLES.c.table_name, _IS_TABLES.c.table_type).where(_IS_TABLES.c.table_schema == schema)
    cols_q = (select(_IS_COLUMNS.c.table_name, _IS_COLUMNS.c.column_name, _IS_COLUMNS.c.data_type,
                     _IS_COLUMNS.c.is_nullable)
              .where(_IS_COLUMNS.c.table_schema == schema)
              .order_by(_IS_COLUMNS.c.table_name, _IS_COLUMNS.c.ordinal_position))
    if only is not None:
        tables_q = tables_q.where(_IS_TABLES.c.table_name == only)
        cols_q = cols_q.where(_IS_COLUMNS.c.table_name == only)
    with _connection(bind) as conn:
        kinds: dict[str, TableKind] = {name: ("view" if kind == "VIEW" else "table")
                                       for name, kind in conn.execute(tables_q)}
        columns: dict[str, list[dict]] = {}
        for tname, cname, dtype, nullable in conn.execute(cols_q):
            type_cls = _DUCKDB_TYPES.get(dtype.split("(")[0].upper(), sqltypes.NullType)
            columns.setdefault(tname, []).append(
                {"name": cname, "type": type_cls(), "type_name": dtype, "nullable": nullable == "YES"})
    return {name: (kind, columns.get(name, [])) for name, kind in kinds.items()}


_PG_CLASS = table("pg_class", column("relname"), column("relnamespace"), column("relkind"), column("reltuples"),
                  schema="pg_catalog")
_PG_NAMESPACE = table("pg_namespace", column("oid"), column("nspname"), schema="pg_catalog")


def _estimated_rows(engine: Engine, schema: str) -> dict[str, int]:
    """Cheap row estimates kept by the database, one query per schema; none for views or elsewhere.

    PostgreSQL: ``reltuples`` as of the last ANALYZE/autovacuum (-1, never analysed, is unknown).
    DuckDB: ``duckdb_tables().estimated_size``, the rows stored (deleted ones count until compacted).
    """
    if engine.dialect.name == "postgresql":
        cls, nsp = _PG_CLASS, _PG_NAMESPACE
        query = (select(cls.c.relname, cast(cls.c.reltuples, BigInteger))
                 .join_from(cls, nsp, nsp.c.oid == cls.c.relnamespace)
                 .where(nsp.c.nspname == schema, cls.c.relkind.in_(["r", "m", "p"])))
    elif engine.dialect.name == "duckdb":
        tables = func.duckdb_tables().table_valued("database_name", "schema_name", "table_name", "estimated_size")
        query = (select(tables.c.table_name, tables.c.estimated_size)
                 .where(tables.c.database_name == func.current_database(), tables.c.schema_name == schema))
    else:
        return {}
    with engine.connect() as conn:
        return {name: int(n) for name, n in conn.execute(query) if n is not None and n >= 0}


def _first_line(exc: BaseException) -> str:
    return str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
