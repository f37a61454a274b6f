"""``compile_plan``: config + catalog -> Plan. Pure: no database, no clock, no randomness.

Same config + same catalog (in any order) => the same Plan, hence byte-identical plan JSON.
"""

from __future__ import annotations

import difflib
from typing import Any

from baselinr import __version__
from baselinr.config.models import SECRET_KEY_RE, BaselinrConfig
from baselinr.connectors.catalog import Catalog
from baselinr.errors import PlanError
from planner.canonical import compact_json, digest, split_digest
from planner.expand import Match, expand, select_columns, task_id
from planner.graph import dependency_graph, levels, make_batches, warehouse_limit
from planner.models import ExecutionSettings, Plan, TaskSpec, WarehouseSpec, WarehouseSummary


def compile_plan(config: BaselinrConfig, catalog: Catalog) -> Plan:
    """Compile the plan with every digest filled. Raises PlanError (missing table, cycle, bad dependency)."""
    matches, selection_warnings = expand(config, catalog)
    warnings = sorted(catalog.warnings) + selection_warnings
    tasks = {m.task_id: _task(config, m, warnings) for m in matches}
    _resolve_dependencies(config, matches, tasks)
    level_of = levels(dependency_graph((t.id, t.depends_on) for t in tasks.values()))
    batches = make_batches(tasks.values(), level_of, config.execution.batch_size)
    ordered = [tasks[tid] for batch in batches for tid in batch.tasks]
    execution = config.execution
    plan = Plan(
        baselinr_version=__version__,
        config_digest=config_digest(config),
        environment=config.environment,
        execution=ExecutionSettings(max_workers=execution.max_workers, batch_size=execution.batch_size,
                                    queue_size=execution.queue_size),
        warehouses=_warehouses(config, warnings),
        batches=tuple(batches),
        tasks=tuple(ordered),
        warnings=tuple(warnings),
        summary=_summary(config, ordered),
    )
    return seal(plan)


def _warehouses(config: BaselinrConfig, warnings: list[str]) -> dict[str, WarehouseSpec]:
    """Every warehouse of the config with its limit and cap; adds the SQLite-under-parallelism warning."""
    out: dict[str, WarehouseSpec] = {}
    for name, conn in sorted(config.warehouses.items()):
        limit, warning = warehouse_limit(name, conn.type, config.execution)
        if warning:
            warnings.append(warning)
        out[name] = WarehouseSpec(type=conn.type, cap=min(limit, config.execution.max_workers), limit=limit,
                                  connection=config.public_connection(name))
    return out


def seal(plan: Plan) -> Plan:
    """The plan with every task digest and the plan digest (re)computed.

    One pass: each task is dumped once, its digest computed, and its sealed JSON fed straight
    into the plan digest (half the work of sealing tasks first and hashing the plan after).
    """
    sealed: list[TaskSpec] = []

    def encode(task: TaskSpec) -> str:
        body = task.model_dump(mode="json", by_alias=True, exclude={"digest"})
        value = task_digest(body)
        sealed.append(task.model_copy(update={"digest": value}))
        return compact_json({**body, "digest": value})

    value = split_digest(plan.model_copy(update={"plan_digest": ""}), "tasks", exclude="plan_digest",
                         encode_item=encode)
    return plan.model_copy(update={"tasks": tuple(sealed), "plan_digest": value})


# Left out of a task's digest: the digest itself, and the row estimate, an ordering hint that
# moves with every ANALYZE without changing what the task does (the plan digest still covers it).
_NOT_DIGESTED = ("digest", "estimated_rows")


def task_digest(task: TaskSpec | dict[str, Any]) -> str:
    """sha256 of the task's compact canonical JSON without ``digest`` and ``estimated_rows``."""
    body = task.model_dump(mode="json", by_alias=True) if isinstance(task, TaskSpec) else task
    return digest({k: v for k, v in body.items() if k not in _NOT_DIGESTED})


def legacy_task_digest(task: TaskSpec) -> str:
    """The task digest of plans written before ``estimated_rows`` left it (still accepted on load)."""
    return digest(task, exclude="digest")


def plan_digest(plan: Plan) -> str:
    """sha256 of the plan's compact canonical JSON without ``plan_digest`` (computed task by task)."""
    return split_digest(plan, "tasks", exclude="plan_digest")


def config_digest(config: BaselinrConfig) -> str:
    """sha256 of the config as written (unset fields left out, so a new optional config field
    does not change it), with secrets and hook headers (which carry tokens) removed."""
    return digest(_scrub(config.model_dump(mode="json", by_alias=True, exclude_unset=True)))


def _scrub(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _scrub(v) for k, v in value.items() if not SECRET_KEY_RE.search(k) and k != "headers"}
    if isinstance(value, list):
        return [_scrub(v) for v in value]
    return value


def _task(config: BaselinrConfig, match: Match, warnings: list[str]) -> TaskSpec:
    sel, table, profiling = match.selection, match.table, config.profiling
    return TaskSpec(
        id=match.task_id,
        warehouse=table.warehouse,
        schema=table.schema_,
        table=table.name,
        table_kind=table.kind,
        columns=select_columns(match.ref.index, sel, table, warnings),
        fingerprint=table.fingerprint,
        metrics=tuple(sel.metrics if sel.metrics is not None else profiling.metrics),
        compute_histograms=sel.compute_histograms if sel.compute_histograms is not None else profiling.compute_histograms,
        histogram_bins=sel.histogram_bins if sel.histogram_bins is not None else profiling.histogram_bins,
        selection=match.ref,
        estimated_rows=table.estimated_rows,
    )


def _resolve_dependencies(config: BaselinrConfig, matches: list[Match], tasks: dict[str, TaskSpec]) -> None:
    """Fill depends_on in place: 'table', 'schema.table' or 'warehouse.schema.table' -> task ids of this plan.

    A pattern or schema selection's own tables are not made to depend on themselves.
    """
    for match in matches:
        sel = match.selection
        if not sel.depends_on:
            continue
        deps: set[str] = set()
        for ref in sel.depends_on:
            dep = _dependency_id(ref, match)
            if dep not in tasks:
                hint = difflib.get_close_matches(dep, list(tasks), n=1)
                raise PlanError(f"profiling.tables[{match.ref.index}].depends_on: {ref!r} ({dep}) is not a table "
                                f"of this plan" + (f" (did you mean {hint[0]}?)" if hint else ""))
            if dep != match.task_id or sel.kind == "table":
                deps.add(dep)
        tid = match.task_id
        tasks[tid] = tasks[tid].model_copy(update={"depends_on": tuple(sorted(deps))})


def _dependency_id(ref: str, match: Match) -> str:
    parts = ref.split(".")
    if len(parts) > 3 or not all(parts):
        raise PlanError(f"profiling.tables[{match.ref.index}].depends_on: {ref!r} is not "
                        f"'table', 'schema.table' or 'warehouse.schema.table'")
    defaults = [match.table.warehouse, match.table.schema_]
    return task_id(*(defaults[:3 - len(parts)] + parts))


def _summary(config: BaselinrConfig, tasks: list[TaskSpec]) -> dict[str, WarehouseSummary]:
    """Per warehouse: tables, columns, and metric computations requested (columns x metrics per task)."""
    counts = {name: [0, 0, 0] for name in config.warehouses}
    for t in tasks:
        c = counts[t.warehouse]
        c[0] += 1
        c[1] += len(t.columns)
        c[2] += len(t.columns) * len(t.metrics)
    return {name: WarehouseSummary(tables=a, columns=b, metrics=m) for name, (a, b, m) in sorted(counts.items())}
