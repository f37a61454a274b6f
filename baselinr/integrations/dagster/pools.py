"""Warehouse limits as Dagster concurrency pools: one pool per warehouse, its limit the warehouse's.

The pool takes the warehouse's own limit (``warehouse_limits`` entry, else the per-type default),
not its cap: the cap is bounded by ``max_workers``, which is per asset (keep it 1 under Dagster),
while the pool bounds how many assets of the warehouse Dagster runs at once.

Dagster enforces a pool's limit across every run of the instance, but only once the limit is
set on the instance (``dagster instance concurrency set <pool> <limit>`` or
``apply_pool_limits``); a pool without a limit is unlimited unless dagster.yaml sets
``concurrency.pools.default_limit``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from baselinr.errors import BaselinrError
from planner.models import Plan

if TYPE_CHECKING:
    from dagster import DagsterInstance

POOL_PREFIX = "baselinr_"


def pool_name(warehouse: str) -> str:
    """The Dagster pool of a warehouse's assets, e.g. ``baselinr_analytics``."""
    return f"{POOL_PREFIX}{warehouse}"


def pool_limits(plan: Plan) -> dict[str, int]:
    """{pool: limit} for every warehouse of the plan, the limit being the warehouse's own limit."""
    return {pool_name(name): spec.own_limit for name, spec in sorted(plan.warehouses.items())}


def apply_pool_limits(instance: "DagsterInstance", plan: Plan) -> dict[str, int]:
    """Set each pool's limit on ``instance`` to its warehouse's limit; returns what was set.

    Raises ``BaselinrError`` when the instance's storage cannot hold concurrency limits.
    """
    storage = instance.event_log_storage
    if not storage.supports_global_concurrency_limits:
        raise BaselinrError("this Dagster instance's storage does not support concurrency pools; "
                            "run `dagster instance migrate` or use a PostgreSQL/MySQL/SQLite storage that does")
    limits = pool_limits(plan)
    for pool, limit in limits.items():
        storage.set_concurrency_slots(pool, limit)
    return limits
