"""Reading and writing plan files.

``load_plan`` trusts nothing: every refusal is a one-line ``PlanError`` (exit 2) that starts
with the plan's name and says what to do. Checks, in order: JSON, format version, the models'
schema, structure (duplicate ids, unknown warehouses, dependencies, batches, cycles), task
digests, plan digest.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from pathlib import Path
from typing import Iterator

from pydantic import ValidationError

from baselinr.config.loader import format_validation_error
from baselinr.errors import PlanError
from planner.canonical import iter_canonical_json
from planner.compiler import legacy_task_digest, plan_digest, seal, task_digest
from planner.graph import dependency_graph
from planner.models import READABLE_FORMAT_VERSIONS, Plan

REPLAN = "re-run baselinr plan"


def dumps_plan(plan: Plan) -> str:
    """Canonical plan JSON (sorted keys, 2-space indent, trailing newline) with digests filled."""
    return "".join(iter_plan_json(plan))


def iter_plan_json(plan: Plan) -> Iterator[str]:
    """``dumps_plan`` in pieces (one per task), to write a large plan without holding it twice."""
    return iter_canonical_json(plan if plan.plan_digest else seal(plan), "tasks")


def write_plan(plan: Plan, path: str | os.PathLike[str]) -> None:
    """Write the plan JSON atomically (temp file + rename), so a reader never sees half a plan.

    A symlink is written through (its target is replaced, not the link); a device or pipe is refused.
    """
    target = Path(os.path.realpath(path))
    if target.exists() and not target.is_file():
        raise PlanError(f"{path}: not a regular file (a directory, device or pipe); give a file path, "
                        "or leave out -o to write the plan to standard output")
    tmp = target.with_name(f".{target.name}.tmp")
    try:
        with tmp.open("w", encoding="utf-8") as fh:
            fh.writelines(iter_plan_json(plan))
        os.replace(tmp, target)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise PlanError(f"{path}: cannot write plan file: {exc.strerror}") from None


def load_plan(source: str | os.PathLike[str]) -> Plan:
    """Parse and verify a plan from a file path, or from JSON text (a string starting with '{')."""
    name, text = _read(source)
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        if _cut_off(text, exc):
            raise PlanError(f"{name}: the plan is truncated (the JSON ends early at line {exc.lineno}); {REPLAN}") from None
        raise PlanError(f"{name}: not a plan: invalid JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}") from None
    if not isinstance(data, dict):
        raise PlanError(f"{name}: not a plan: expected a JSON object, got {type(data).__name__}")
    version = data.get("format_version")
    if type(version) is not int or version not in READABLE_FORMAT_VERSIONS:
        readable = ", ".join(str(v) for v in READABLE_FORMAT_VERSIONS)
        raise PlanError(f"{name}: unknown plan format_version {version!r}; this baselinr reads format version(s) "
                        f"{readable}; {REPLAN}")
    try:
        plan = Plan.model_validate(data)
    except ValidationError as exc:
        raise PlanError(f"{name}: invalid plan: {format_validation_error(exc, Plan)}") from None
    try:
        check_plan(plan)
    except PlanError as exc:
        raise PlanError(f"{name}: {exc}") from None
    return plan


def _cut_off(text: str, exc: json.JSONDecodeError) -> bool:
    """Whether a JSON object failed to parse because its text stops early (a truncated file)."""
    body = text.rstrip()
    return body.lstrip().startswith("{") and (exc.pos >= len(body) or not body.endswith("}")
                                               or exc.msg.startswith("Unterminated string"))


def check_plan(plan: Plan) -> None:
    """Raise PlanError when the plan is inconsistent or its digests do not match its content."""
    ids = [t.id for t in plan.tasks]
    duplicate = next((tid for tid, n in Counter(ids).items() if n > 1), None)
    if duplicate is not None:
        raise PlanError(f"duplicate task id {duplicate}; {REPLAN}")
    known = set(ids)
    for task in plan.tasks:
        if task.warehouse not in plan.warehouses:
            raise PlanError(f"task {task.id}: unknown warehouse {task.warehouse!r} "
                            f"(the plan defines {', '.join(sorted(plan.warehouses)) or 'none'}); {REPLAN}")
        unknown = next((d for d in task.depends_on if d not in known), None)
        if unknown is not None:
            raise PlanError(f"task {task.id}: depends on {unknown}, which is not a task of this plan; {REPLAN}")
    for batch in plan.batches:
        stray = next((tid for tid in batch.tasks if tid not in known), None)
        if stray is not None:
            raise PlanError(f"batch {batch.id}: {stray} is not a task of this plan; {REPLAN}")
    batched = Counter(tid for batch in plan.batches for tid in batch.tasks)
    misplaced = next((tid for tid in ids if batched[tid] != 1), None)
    if misplaced is not None:
        raise PlanError(f"task {misplaced}: in {batched[misplaced]} batches, expected exactly 1; {REPLAN}")
    dependency_graph((t.id, t.depends_on) for t in plan.tasks)
    for task in plan.tasks:
        if task.digest != task_digest(task) and task.digest != legacy_task_digest(task):
            raise PlanError(f"task {task.id}: digest mismatch: the task was edited after compilation; {REPLAN}")
    if plan.plan_digest != plan_digest(plan):
        raise PlanError(f"plan digest mismatch: the plan was edited after compilation; {REPLAN}")


def _read(source: str | os.PathLike[str]) -> tuple[str, str]:
    """(name for messages, text): the file's name as given, or 'plan' for inline JSON."""
    if isinstance(source, str) and source.lstrip().startswith("{"):
        return "plan", source
    path = Path(source)
    try:
        return str(source), path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise PlanError(f"{source}: plan file not found") from None
    except UnicodeDecodeError:
        raise PlanError(f"{source}: not a plan: the file is not UTF-8 text") from None
    except OSError as exc:
        raise PlanError(f"{source}: cannot read plan file: {exc.strerror}") from None
