"""A Baselinr plan as Dagster definitions: one asset per task, a pool per warehouse, one job.

Each asset profiles its table with ``PlanTarget.run_tasks`` (the runner's own executor and
state store), into ONE Baselinr run per Dagster run: ``dagster-<root run id>``, so retries and
re-execution from failure (which keep Dagster's root run id) finish the same Baselinr run and
replace, never double, a table's results. The run tag ``baselinr/run_id`` overrides it.
"""

import hashlib
import os
import re
import time
from typing import Any, Iterable, Sequence

import dagster as dg
from dagster import AssetExecutionContext

from baselinr.config import load_config
from baselinr.errors import BaselinrError, PlanError
from baselinr.integrations.dagster.execution import PlanTarget, StepResult
from baselinr.integrations.dagster.pools import pool_name
from baselinr.runner.state import TaskRow
from planner import dumps_plan, load_plan
from planner.models import Plan, TaskSpec

RUN_ID_TAG = "baselinr/run_id"
DEFAULT_JOB_NAME = "baselinr_plan"
_INVALID_NAME_CHARS = re.compile(r"[^A-Za-z0-9_]")

PlanSource = Plan | str | os.PathLike[str]


def build_definitions(plan_path_or_plan: PlanSource, config_path: str | os.PathLike[str] | None = None, *,
                      job_name: str = DEFAULT_JOB_NAME, retry_policy: dg.RetryPolicy | None = None) -> dg.Definitions:
    """Definitions with one asset per plan task and a job ``job_name`` that materializes them all.

    Asset key ``[warehouse, schema, table]``, group = warehouse, deps = the task's
    ``depends_on``, pool ``baselinr_<warehouse>`` (set its limit with ``apply_pool_limits``).
    ``config_path`` supplies the storage database, credentials and retries; without it the
    plan's connections (``${VAR}`` from the environment) and ``.baselinr/baselinr.db`` are used.
    Raises ``PlanError`` / ``ConfigError`` (one line) for a bad plan or config.
    """
    target = _target(plan_path_or_plan, config_path)
    assets = [_task_asset(target, task, retry_policy) for task in target.plan.tasks]
    job = dg.define_asset_job(job_name, selection=dg.AssetSelection.assets(*assets),
                              description=f"Profile the {len(assets)} table(s) of Baselinr plan "
                                          f"{target.plan.plan_digest[:12]}.")
    return dg.Definitions(assets=assets, jobs=[job])


def profile_batch_asset(plan_path_or_plan: PlanSource, key: str | Sequence[str], *,
                        config_path: str | os.PathLike[str] | None = None, task_ids: Iterable[str] | None = None,
                        max_workers: int | None = None, group_name: str | None = None, pool: str | None = None,
                        retry_policy: dg.RetryPolicy | None = None) -> dg.AssetsDefinition:
    """ONE asset that profiles many tasks (default: the whole plan) with the runner's worker pool.

    ``max_workers`` defaults to the plan's; the plan's per-warehouse caps apply inside the
    asset. A Dagster pool counts the asset as one slot whatever its ``max_workers``. The asset
    fails (after storing every table that succeeded) when any of its tables fails.
    """
    target = _target(plan_path_or_plan, config_path)
    plan = target.plan
    ids = [t.id for t in plan.tasks] if task_ids is None else list(task_ids)
    known = {t.id for t in plan.tasks}
    unknown = next((t for t in ids if t not in known), None)
    if unknown is not None or not ids:
        raise PlanError(f"profile_batch_asset: {unknown!r} is not a task of the plan" if ids else
                        "profile_batch_asset: no tasks to profile")
    workers = max_workers or plan.execution.max_workers
    deps = sorted({d for t in ids for d in plan.task(t).depends_on if d not in set(ids)})
    asset_key = dg.AssetKey(key)

    @dg.multi_asset(name=_op_name(asset_key.path), outs={"result": dg.AssetOut(key=asset_key, group_name=group_name)},
                    deps=[_asset_key(plan.task(d)) for d in deps], pool=pool, retry_policy=retry_policy,
                    description=f"Profile {len(ids)} table(s) of a Baselinr plan with max_workers={workers}.")
    def _batch(context: AssetExecutionContext) -> dg.MaterializeResult:
        started = time.monotonic()
        result = _run(context, target, ids, workers)
        metadata: dict[str, Any] = {
            "baselinr_run_id": result.run_id, "tables": len(ids), "succeeded": len(ids) - len(result.failed),
            "failed": len(result.failed), "row_count": sum(p.row_count or 0 for p in result.profiles.values()),
            "duration_seconds": time.monotonic() - started,
        }
        if result.failed:
            first = result.failed[0]
            raise dg.Failure(description=f"{len(result.failed)} of {len(ids)} table(s) failed; first: "
                                         f"{_reason(first)}", metadata=metadata)
        return dg.MaterializeResult(metadata=metadata)

    return _batch


def baselinr_run_id(run: dg.DagsterRun) -> str:
    """The Baselinr run a Dagster run writes into: the ``baselinr/run_id`` tag, else ``dagster-<root run id>``."""
    return run.tags.get(RUN_ID_TAG) or f"dagster-{run.root_run_id or run.run_id}"


def _task_asset(target: PlanTarget, task: TaskSpec, retry_policy: dg.RetryPolicy | None) -> dg.AssetsDefinition:
    warehouse = target.plan.warehouses[task.warehouse]
    out = dg.AssetOut(
        key=_asset_key(task), group_name=_safe(task.warehouse), kinds={warehouse.type},
        description=f"Baselinr profile of {task.schema_}.{task.table} ({len(task.columns)} column(s)) "
                    f"in warehouse {task.warehouse}.",
        metadata={"baselinr/task_id": task.id, "baselinr/task_digest": task.digest})

    @dg.multi_asset(name=_op_name([task.warehouse, task.schema_, task.table]), outs={"result": out},
                    deps=[_asset_key(target.plan.task(d)) for d in task.depends_on],
                    pool=pool_name(task.warehouse), retry_policy=retry_policy)
    def _profile(context: AssetExecutionContext) -> dg.MaterializeResult:
        result = _run(context, target, [task.id], 1)
        row = result.tasks[task.id]
        if result.failed:
            raise dg.Failure(description=_reason(row), metadata={"baselinr_run_id": result.run_id,
                                                                 "error_type": row.error_type or row.status.value})
        profile = result.profiles[task.id]
        return dg.MaterializeResult(metadata={
            "baselinr_run_id": result.run_id, "row_count": profile.row_count, "column_count": profile.column_count,
            "duration_seconds": profile.duration_seconds, "attempts": row.attempts})

    return _profile


def _run(context: AssetExecutionContext, target: PlanTarget, task_ids: list[str], max_workers: int) -> StepResult:
    """Run the tasks into this Dagster run's Baselinr run; bad input becomes a non-retried ``Failure``."""
    run_id = baselinr_run_id(context.run)
    context.log.info(f"baselinr run {run_id}: profiling {len(task_ids)} table(s)")
    try:
        return target.run_tasks(run_id, task_ids, max_workers)
    except BaselinrError as exc:
        raise dg.Failure(description=str(exc), metadata={"baselinr_run_id": run_id}, allow_retries=False) from None


def _reason(row: TaskRow) -> str:
    return f"{row.task_id}: {row.status.value}: {row.error_message or 'no reason recorded'}"


def _target(plan_path_or_plan: PlanSource, config_path: str | os.PathLike[str] | None) -> PlanTarget:
    # A Plan object is sealed and verified like a file: digests filled, structure checked.
    source = dumps_plan(plan_path_or_plan) if isinstance(plan_path_or_plan, Plan) else plan_path_or_plan
    plan = load_plan(source)
    target = PlanTarget(plan, load_config(config_path) if config_path is not None else None)
    target.check_connections()
    return target


def _asset_key(task: TaskSpec) -> dg.AssetKey:
    return dg.AssetKey([task.warehouse, task.schema_, task.table])


def _safe(name: str) -> str:
    return _INVALID_NAME_CHARS.sub("_", name)


def _op_name(parts: Sequence[str]) -> str:
    """A valid, unique Dagster op name: the parts joined by ``__``, plus a digest if chars were replaced."""
    joined = "__".join(parts)
    safe = _safe(joined)
    return safe if safe == joined else f"{safe}_{hashlib.sha256(joined.encode()).hexdigest()[:8]}"
