"""What changed between two plans: tasks added, removed and changed (which fields), warehouse
caps, connections and batch counts, and execution settings.

Digests are not compared (they change whenever anything does); a task's batch is, so a reviewer
sees a table move between dependency levels or batches. A new row estimate alone (ANALYZE,
autovacuum, inserts) is listed apart as re-estimated and is not a change: it only orders tasks,
and when that moves a task to another batch the move is the change.
"""

from __future__ import annotations

from typing import Any

from pydantic import Field

from planner.canonical import canonical_json
from planner.models import Plan, PlanModel

_IGNORED_TASK_FIELDS = {"digest", "id", "estimated_rows"}


class FieldChange(PlanModel):
    field: str
    old: Any = Field(description="Previous value (JSON); null when absent.")
    new: Any


class ItemChange(PlanModel):
    """A task or warehouse present in both plans whose fields differ."""

    id: str
    changes: tuple[FieldChange, ...]


class Reestimate(PlanModel):
    """A task in both plans whose row estimate differs."""

    id: str
    old: int | None
    new: int | None


class PlanDiff(PlanModel):
    added: tuple[str, ...] = ()
    removed: tuple[str, ...] = ()
    changed: tuple[ItemChange, ...] = ()
    warehouses_added: tuple[str, ...] = ()
    warehouses_removed: tuple[str, ...] = ()
    warehouses_changed: tuple[ItemChange, ...] = ()
    settings: tuple[FieldChange, ...] = Field((), description="execution settings, environment, format version, warnings.")
    reestimated: tuple[Reestimate, ...] = Field((), description="Tasks whose estimated_rows alone differ; not changes.")

    @property
    def has_changes(self) -> bool:
        return any(getattr(self, name) for name in type(self).model_fields if name != "reestimated")


def diff(old: Plan, new: Plan) -> PlanDiff:
    """Compare two plans; tasks matched by id, warehouses by name."""
    old_tasks, new_tasks = _task_views(old), _task_views(new)
    old_wh, new_wh = _warehouse_views(old), _warehouse_views(new)
    old_top, new_top = _settings_view(old), _settings_view(new)
    return PlanDiff(
        added=tuple(sorted(new_tasks.keys() - old_tasks.keys())),
        removed=tuple(sorted(old_tasks.keys() - new_tasks.keys())),
        changed=_changed(old_tasks, new_tasks),
        warehouses_added=tuple(sorted(new_wh.keys() - old_wh.keys())),
        warehouses_removed=tuple(sorted(old_wh.keys() - new_wh.keys())),
        warehouses_changed=_changed(old_wh, new_wh),
        settings=_field_changes(old_top, new_top),
        reestimated=_reestimates(old, new),
    )


def dumps_diff(result: PlanDiff) -> str:
    """Canonical JSON of a diff, with ``has_changes`` included for scripts."""
    return canonical_json({**result.model_dump(mode="json"), "has_changes": result.has_changes})


def render_diff_text(result: PlanDiff) -> str:
    """A reviewer's rendering: '+' added, '-' removed, '~' changed with one line per field, then
    the re-estimated tasks (not changes)."""
    if not result.has_changes:
        return "no changes\n" + _render_reestimates(result.reestimated)
    lines = [f"tasks: {len(result.added)} added, {len(result.removed)} removed, {len(result.changed)} changed"]
    lines += [f"+ {tid}" for tid in result.added] + [f"- {tid}" for tid in result.removed]
    for item in result.changed:
        lines.append(f"~ {item.id}")
        lines += [f"    {_describe(c)}" for c in item.changes]
    lines += [f"+ warehouse {name}" for name in result.warehouses_added]
    lines += [f"- warehouse {name}" for name in result.warehouses_removed]
    for item in result.warehouses_changed:
        lines.append(f"~ warehouse {item.id}")
        lines += [f"    {_describe(c)}" for c in item.changes]
    lines += [f"~ {_describe(c)}" for c in result.settings]
    return "\n".join(lines) + "\n" + _render_reestimates(result.reestimated)


def _render_reestimates(items: tuple[Reestimate, ...]) -> str:
    if not items:
        return ""
    lines = [f"re-estimated: {len(items)} task(s), row estimates only (not a change)"]
    lines += [f"  {r.id}: {_rows(r.old)} -> {_rows(r.new)} rows" for r in items]
    return "\n".join(lines) + "\n"


def _rows(value: int | None) -> str:
    return "unknown" if value is None else f"{value:,}"


def _reestimates(old: Plan, new: Plan) -> tuple[Reestimate, ...]:
    before = {t.id: t.estimated_rows for t in old.tasks}
    return tuple(Reestimate(id=t.id, old=before[t.id], new=t.estimated_rows)
                 for t in sorted(new.tasks, key=lambda t: t.id) if t.id in before and before[t.id] != t.estimated_rows)


def _settings_view(plan: Plan) -> dict[str, Any]:
    return {"environment": plan.environment, "format_version": plan.format_version, "warnings": list(plan.warnings),
            **{f"execution.{k}": v for k, v in plan.execution.model_dump().items()}}


def _task_views(plan: Plan) -> dict[str, dict[str, Any]]:
    batch_of = {tid: batch.id for batch in plan.batches for tid in batch.tasks}
    return {t.id: {**{k: v for k, v in t.model_dump(mode="json", by_alias=True).items()
                      if k not in _IGNORED_TASK_FIELDS}, "batch": batch_of.get(t.id)} for t in plan.tasks}


def _warehouse_views(plan: Plan) -> dict[str, dict[str, Any]]:
    batches: dict[str, int] = {}
    for batch in plan.batches:
        batches[batch.warehouse] = batches.get(batch.warehouse, 0) + 1
    return {name: {**wh.model_dump(mode="json"), "batches": batches.get(name, 0)} for name, wh in plan.warehouses.items()}


def _changed(old: dict[str, dict[str, Any]], new: dict[str, dict[str, Any]]) -> tuple[ItemChange, ...]:
    items = (ItemChange(id=key, changes=_field_changes(old[key], new[key])) for key in sorted(old.keys() & new.keys()))
    return tuple(item for item in items if item.changes)


def _field_changes(old: dict[str, Any], new: dict[str, Any]) -> tuple[FieldChange, ...]:
    return tuple(FieldChange(field=k, old=old.get(k), new=new.get(k))
                 for k in sorted(old.keys() | new.keys()) if old.get(k) != new.get(k))


def _describe(change: FieldChange) -> str:
    """One line: list fields as '+added -removed' (columns also '~retyped'), scalars as 'old -> new'."""
    old, new = change.old, change.new
    if change.field == "columns":
        old_types = {c["name"]: c["type"] for c in old or ()}
        new_types = {c["name"]: c["type"] for c in new or ()}
        parts = [f"+{n}" for n in new_types if n not in old_types] + [f"-{n}" for n in old_types if n not in new_types]
        parts += [f"~{n} {old_types[n]} -> {new_types[n]}" for n in new_types
                  if n in old_types and old_types[n] != new_types[n]]
        return f"columns: {' '.join(parts) or 'reordered'}"
    if isinstance(old, list) and isinstance(new, list):
        parts = [f"+{v}" for v in new if v not in old] + [f"-{v}" for v in old if v not in new]
        return f"{change.field}: {' '.join(parts) or 'reordered'}"
    if change.field == "selection":
        return f"selection: {_selection(old)} -> {_selection(new)}"
    if change.field == "connection" and isinstance(old, dict) and isinstance(new, dict):
        return "connection: " + ", ".join(f"{k} {old.get(k)!r} -> {new.get(k)!r}"
                                           for k in sorted(old.keys() | new.keys()) if old.get(k) != new.get(k))
    return f"{change.field}: {_scalar(old)} -> {_scalar(new)}"


def _selection(ref: dict[str, Any] | None) -> str:
    return f"profiling.tables[{ref['index']}] {ref['description']}" if ref else "none"


def _scalar(value: Any) -> str:
    return "none" if value is None else str(value)
