"""The compiler: config + catalog -> Plan (pure), and the plan format's I/O and diff.

Public API::

    compile(config, catalog) -> Plan        # pure; raises PlanError
    dumps_plan(plan) -> str                 # canonical JSON, digests filled
    load_plan(path_or_text) -> Plan         # verified; raises PlanError (exit 2)
    write_plan(plan, path)                  # atomic
    diff(old, new) -> PlanDiff              # .has_changes, render_diff_text(), canonical JSON via dumps_diff()
    render_plan_text(plan) / summary_line(plan)
"""

from planner.compiler import compile_plan as compile
from planner.diff import PlanDiff, diff, dumps_diff, render_diff_text
from planner.io import check_plan, dumps_plan, load_plan, write_plan
from planner.models import FORMAT_VERSION, READABLE_FORMAT_VERSIONS, Batch, Plan, SelectionRef, TaskSpec, WarehouseSpec
from planner.render import render_plan_text, summary_line

__all__ = [
    "FORMAT_VERSION", "READABLE_FORMAT_VERSIONS", "Batch", "Plan", "PlanDiff", "SelectionRef", "TaskSpec",
    "WarehouseSpec", "check_plan", "compile", "diff", "dumps_diff", "dumps_plan", "load_plan", "render_diff_text",
    "render_plan_text", "summary_line", "write_plan",
]
