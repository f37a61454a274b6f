"""Selection expansion: every ``profiling.tables`` entry resolved against the catalog.

Contract: each catalog table selected at least once yields exactly one ``Match``, owned by the
most specific selection (explicit table beats pattern beats whole schema; on a tie the earlier
entry wins). A pattern or schema selecting nothing is a warning; a missing explicit table is a
``PlanError`` with a "did you mean" hint.
"""

from __future__ import annotations

import difflib
import fnmatch
import re
from dataclasses import dataclass
from typing import Callable, Iterable

from baselinr.config.models import BaselinrConfig, TableSelection
from baselinr.connectors.catalog import Catalog, ColumnInfo, TableInfo
from baselinr.connectors.gather import selection_schema
from baselinr.errors import PlanError
from planner.models import SelectionRef

PRECEDENCE = {"table": 0, "pattern": 1, "schema": 2}


@dataclass(frozen=True)
class Match:
    """A catalog table and the selection that owns it."""

    table: TableInfo
    selection: TableSelection
    ref: SelectionRef

    @property
    def task_id(self) -> str:
        return task_id(self.table.warehouse, self.table.schema_, self.table.name)


def task_id(warehouse: str, schema: str, table: str) -> str:
    return f"{warehouse}.{schema}.{table}"


def expand(config: BaselinrConfig, catalog: Catalog) -> tuple[list[Match], list[str]]:
    """Winning matches sorted by task id, and warnings (selections that matched nothing)."""
    index = index_catalog(catalog)
    chosen: dict[str, Match] = {}
    warnings = [] if config.profiling.tables else ["profiling.tables is empty: the plan has no tasks"]
    for i, sel in enumerate(config.profiling.tables):
        warehouse = config.warehouse_for(sel)
        schema = selection_schema(config, i, sel)
        ref = SelectionRef(index=i, kind=sel.kind, description=describe(sel, schema))
        matched = _matching_tables(i, sel, warehouse, schema, index.get((warehouse, schema), {}))
        if not matched:
            warnings.append(f"profiling.tables[{i}]: {ref.description} matched no table in warehouse {warehouse!r}")
        for table in matched:
            match = Match(table, sel, ref)
            current = chosen.get(match.task_id)
            if current is None or PRECEDENCE[sel.kind] < PRECEDENCE[current.selection.kind]:
                chosen[match.task_id] = match
    return [chosen[k] for k in sorted(chosen)], warnings


def index_catalog(catalog: Catalog) -> dict[tuple[str, str], dict[str, TableInfo]]:
    """(warehouse, schema) -> table name -> table; a table listed twice is an error (order would matter)."""
    index: dict[tuple[str, str], dict[str, TableInfo]] = {}
    for table in catalog.tables:
        tables = index.setdefault((table.warehouse, table.schema_), {})
        if table.name in tables:
            raise PlanError(f"catalog lists table {task_id(table.warehouse, table.schema_, table.name)} twice")
        tables[table.name] = table
    return index


def describe(sel: TableSelection, schema: str) -> str:
    if sel.kind == "table":
        return f"table '{schema}.{sel.table}'"
    if sel.kind == "pattern":
        return f"pattern '{sel.pattern}' ({sel.pattern_type}) in {schema}"
    return f"schema {schema}"


def _matching_tables(i: int, sel: TableSelection, warehouse: str, schema: str,
                     tables: dict[str, TableInfo]) -> list[TableInfo]:
    if sel.table is not None:
        if sel.table not in tables:
            hint = difflib.get_close_matches(sel.table, list(tables), n=1)
            raise PlanError(f"profiling.tables[{i}]: table '{schema}.{sel.table}' not found in warehouse "
                            f"{warehouse!r}" + (f" (did you mean '{schema}.{hint[0]}'?)" if hint else ""))
        return [tables[sel.table]]
    include = matcher([sel.pattern], sel.pattern_type) if sel.pattern is not None else None
    exclude = matcher(sel.exclude_patterns, sel.pattern_type)
    kinds = set(sel.table_types) if sel.table_types is not None else None
    return [t for name, t in sorted(tables.items())
            if (include is None or include(name)) and not exclude(name) and (kinds is None or t.kind in kinds)]


def matcher(patterns: Iterable[str], pattern_type: str) -> Callable[[str], bool]:
    """A predicate true when a name fully matches any of the globs (case-sensitive) or regexes."""
    sources = [fnmatch.translate(p) if pattern_type == "glob" else f"(?:{p})\\Z" for p in patterns]
    if not sources:
        return lambda _name: False
    compiled = re.compile("|".join(f"(?:{s})" for s in sources))
    return lambda name: compiled.match(name) is not None


def select_columns(i: int, sel: TableSelection, table: TableInfo, warnings: list[str]) -> tuple[ColumnInfo, ...]:
    """The table's columns kept by the include globs (default all) minus the exclude globs, in table order.

    An include glob of an explicit-table selection that matches no column is a warning (a typo).
    """
    names = [c.name for c in table.columns]
    if sel.columns is not None and sel.kind == "table":
        for glob in sel.columns:
            if not any(fnmatch.fnmatchcase(n, glob) for n in names):
                warnings.append(f"profiling.tables[{i}].columns: {glob!r} matched no column of "
                                f"{task_id(table.warehouse, table.schema_, table.name)}")
    include = matcher(sel.columns, "glob") if sel.columns is not None else None
    exclude = matcher(sel.exclude_columns, "glob")
    return tuple(c for c in table.columns if (include is None or include(c.name)) and not exclude(c.name))
