"""Human renderings of a plan: the review table (``--format text``) and a one-line summary."""

from __future__ import annotations

from planner.models import Plan, TaskSpec


def summary_line(plan: Plan) -> str:
    """E.g. 'plan: 5 tasks in 2 batches on 1 warehouse (sqlite: cap 1, 5 tables, 52 columns), 0 warnings'."""
    per = "; ".join(f"{name}: cap {wh.cap}, {_n(plan.summary[name].tables, 'table')}, "
                    f"{_n(plan.summary[name].columns, 'column')}"
                    for name, wh in plan.warehouses.items() if name in plan.summary)
    return (f"plan: {_n(len(plan.tasks), 'task')} in {_n(len(plan.batches), 'batch')} on "
            f"{_n(len(plan.warehouses), 'warehouse')} ({per}), {_n(len(plan.warnings), 'warning')}")


def render_plan_text(plan: Plan) -> str:
    """Per warehouse its type, cap (and higher limit) and batches; per batch its tables with rows, columns and why selected."""
    lines = [summary_line(plan)]
    for name, wh in plan.warehouses.items():
        batches = [b for b in plan.batches if b.warehouse == name]
        limit = f" (limit {wh.own_limit} with more workers)" if wh.own_limit > wh.cap else ""
        lines += ["", f"warehouse {name} ({wh.type}): cap {wh.cap}{limit}, {_n(len(batches), 'batch')}"]
        table: list[tuple[str, ...] | str] = []
        for batch in batches:
            table.append(f"  batch {batch.id} (level {batch.level}, {_n(len(batch.tasks), 'table')})")
            table += [_task_row(plan.task(tid)) for tid in batch.tasks]
        lines += _aligned(table)
    if plan.warnings:
        lines += ["", "warnings:"] + [f"  {w}" for w in plan.warnings]
    return "\n".join(lines) + "\n"


def _task_row(task: TaskSpec) -> tuple[str, ...]:
    rows = "?" if task.estimated_rows is None else f"{task.estimated_rows:,}"
    deps = f"after {', '.join(task.depends_on)}" if task.depends_on else ""
    return (f"    {task.schema_}.{task.table}", task.table_kind, f"rows {rows}", _n(len(task.columns), "column"),
            f"[{task.selection.description}]", deps)


def _aligned(table: list[tuple[str, ...] | str]) -> list[str]:
    """Pad the cells of tuple rows to common widths; plain strings pass through."""
    cells = [row for row in table if isinstance(row, tuple)]
    widths = [max(len(row[i]) for row in cells) for i in range(len(cells[0]))] if cells else []
    return [row if isinstance(row, str) else "  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip()
            for row in table]


def _n(count: int, noun: str) -> str:
    plural = noun + ("es" if noun.endswith("ch") else "s")
    return f"{count} {noun if count == 1 else plural}"
