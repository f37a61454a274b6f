"""Selection expansion: every ``profiling.tables`` entry resolved against the catalog.

Contract: each catalog table selected at least once yields exactly one ``Match``, owned by the
most specific selection (explicit table beats pattern beats whole schema; on a tie the earlier
entry wins, with a warning when the tied entries' settings differ). A pattern or schema
selecting nothing is a warning; a missing explicit table is a ``PlanError`` with a "did you
mean" hint.
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
# What a selection decides about the task of each table it owns.
SETTINGS = ("columns", "exclude_columns", "metrics", "compute_histograms", "histogram_bins", "depends_on")


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
    """Winning matches sorted by task id, and warnings (selections that matched nothing, ties)."""
    index = index_catalog(catalog)
    selected: dict[str, list[Match]] = {}
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
            selected.setdefault(match.task_id, []).append(match)
    chosen = {tid: min(matches, key=lambda m: (PRECEDENCE[m.ref.kind], m.ref.index))
              for tid, matches in selected.items()}
    return [chosen[k] for k in sorted(chosen)], warnings + _tie_warnings(selected, chosen)


def _tie_warnings(selected: dict[str, list[Match]], chosen: dict[str, Match]) -> list[str]:
    """One warning per pair of equally specific entries that select the same tables with different
    settings: the earlier entry's apply, which the later one's author may not expect."""
    ties: dict[tuple[int, int], list[str]] = {}
    refs: dict[int, SelectionRef] = {}
    for tid in sorted(selected):
        winner = chosen[tid]
        for other in selected[tid]:
            if (other is not winner and other.ref.kind == winner.ref.kind
                    and _settings(other.selection) != _settings(winner.selection)):
                ties.setdefault((winner.ref.index, other.ref.index), []).append(tid)
                refs[winner.ref.index], refs[other.ref.index] = winner.ref, other.ref
    return [f"profiling.tables[{w}] ({refs[w].description}) and profiling.tables[{o}] ({refs[o].description}) "
            f"both select {_tables(tids)} with different settings; the settings of profiling.tables[{w}] "
            "apply (the earlier of equally specific entries)"
            for (w, o), tids in sorted(ties.items())]


def _settings(sel: TableSelection) -> tuple[object, ...]:
    return tuple(getattr(sel, name) for name in SETTINGS)


def _tables(task_ids: list[str], shown: int = 5) -> str:
    if len(task_ids) == 1:
        return task_ids[0]
    names = ", ".join(sorted(task_ids)[:shown]) + (f" and {len(task_ids) - shown} more" if len(task_ids) > shown else "")
    return f"{len(task_ids)} tables ({names})"


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
