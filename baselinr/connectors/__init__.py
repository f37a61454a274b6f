"""Catalog layer: engines per warehouse and table listings as plain data."""

from baselinr.connectors.catalog import Catalog, ColumnInfo, TableInfo, inspect_schema, inspect_table, schema_fingerprint
from baselinr.connectors.factory import build_url, create_engine, safe_url
from baselinr.connectors.gather import gather_catalog, selection_schema

__all__ = ["Catalog", "ColumnInfo", "TableInfo", "build_url", "create_engine", "gather_catalog", "inspect_schema",
           "inspect_table", "safe_url", "schema_fingerprint", "selection_schema"]
