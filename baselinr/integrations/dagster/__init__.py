"""Run a Baselinr plan in Dagster: ``pip install 'baselinr[dagster]'``. See docs/dagster.md.

Public API::

    build_definitions(plan_path_or_plan, config_path=None, *, job_name="baselinr_plan",
                      retry_policy=None) -> dagster.Definitions
    profile_batch_asset(plan_path_or_plan, key, *, config_path=None, task_ids=None, max_workers=None,
                        group_name=None, pool=None, retry_policy=None) -> dagster.AssetsDefinition
    pool_name(warehouse) -> str                      # "baselinr_<warehouse>"
    pool_limits(plan) -> dict[str, int]              # {pool: the plan's cap}
    apply_pool_limits(instance, plan) -> dict[str, int]
    baselinr_run_id(dagster_run) -> str              # "dagster-<root run id>" or the baselinr/run_id tag
"""

try:
    import dagster  # noqa: F401 - fail here, with the fix, rather than deep inside
except ImportError as exc:  # pragma: no cover - exercised by a subprocess test
    raise ImportError("the Dagster integration needs dagster: pip install 'baselinr[dagster]'") from exc

from baselinr.integrations.dagster.assets import (
    DEFAULT_JOB_NAME, RUN_ID_TAG, baselinr_run_id, build_definitions, profile_batch_asset,
)
from baselinr.integrations.dagster.pools import POOL_PREFIX, apply_pool_limits, pool_limits, pool_name

__all__ = ["DEFAULT_JOB_NAME", "POOL_PREFIX", "RUN_ID_TAG", "apply_pool_limits", "baselinr_run_id",
           "build_definitions", "pool_limits", "pool_name", "profile_batch_asset"]
