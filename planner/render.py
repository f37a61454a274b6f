"""Human renderings of a plan: the review table (``--format text``) and a one-line summary."""

from __future__ import annotations

from planner.models import Plan


def summary_line(plan: Plan) -> str:
    """E.g. 'plan: 5 tasks in 2 batches on 1 warehouse (sqlite: cap 1, 5 tables, 53 columns), 0 warnings'."""
    per = ", ".join(f"{name}: cap {wh.cap}, {plan.summary[name].tables} tables, {plan.summary[name].columns} columns"
                    for name, wh in plan.warehouses.items() if name in plan.summary)
    return (f"plan: {_n(len(plan.tasks), 'task')} in {_n(len(plan.batches), 'batch')} on "
            f"{_n(len(plan.warehouses), 'warehouse')} ({per}), {_n(len(plan.warnings), 'warning')}")


def render_plan_text(plan: Plan) -> str:
    """Per warehouse its type, cap and batches; per batch its tables with rows, columns and why selected."""
    lines = [summary_line(plan)]
    for name, wh in plan.warehouses.items():
        batches = [b for b in plan.batches if b.warehouse == name]
        lines += ["", f"warehouse {name} ({wh.type}): cap {wh.cap}, {_n(len(batches), 'batch')}"]
        for batch in batches:
            lines.append(f"  batch {batch.id} (level {batch.level}, {_n(len(batch.tasks), 'table')})")
            for tid in batch.tasks:
                task = plan.task(tid)
                rows = "?" if task.estimated_rows is None else f"{task.estimated_rows:,}"
                deps = f"  after {', '.join(task.depends_on)}" if task.depends_on else ""
                lines.append(f"    {task.schema_}.{task.table}  {task.table_kind}  rows {rows}  "
                             f"{_n(len(task.columns), 'column')}  [{task.selection.description}]{deps}")
    if plan.warnings:
        lines += ["", "warnings:"] + [f"  {w}" for w in plan.warnings]
    return "\n".join(lines) + "\n"


def _n(count: int, noun: str) -> str:
    plural = noun + ("es" if noun.endswith("ch") else "s")
    return f"{count} {noun if count == 1 else plural}"
