"""Profile one table: ``profile_table(conn, task) -> ProfilingResult``.

Cost for an ordinary table: one aggregate select (every non-histogram metric of every column,
one scan) plus, when histograms are wanted, one more select (all histograms; their bounds come
from the first). Wide tables take one select per ``MAX_SELECT_ITEMS`` aggregates; SQLite tables
whose numeric columns hold text or blobs one more, for those columns. A metric that
fails is recorded in ``ColumnProfile.errors``; failures of the whole table (missing table, and
every transient error: lost connection, lock, timeout) raise the database's own SQLAlchemy
exception for the runner to classify and retry.

Thread-safe: no shared state; each call uses only the connection it is given. Does not read
the config: everything comes from the task.
"""

from __future__ import annotations

import time
from datetime import datetime, timezone
from typing import Any

from sqlalchemy import func
from sqlalchemy.engine import Connection

from planner.models import TaskSpec
from baselinr.profiling.aggregates import (
    REPORTED_WHEN_FOUND, ROWS, ColumnPlan, Item, base_value, holds_non_numbers, plan_column,
)
from baselinr.profiling.dialects import Flavor
from baselinr.profiling.fused import FusedRunner, Key
from baselinr.profiling.histogram import HistogramPlan, plan_histogram
from baselinr.profiling.result import ColumnProfile, ProfilingResult
from baselinr.profiling.values import clean


def profile_table(conn: Connection, task: TaskSpec) -> ProfilingResult:
    """Profile ``task``'s table on ``conn``; see the module docstring for cost and errors."""
    started = datetime.now(timezone.utc)
    clock = time.perf_counter()
    flavor = Flavor.of(conn)
    flavor.prepare(conn)
    source = flavor.source(task.schema_, task.table, [c.name for c in task.columns])
    plans = [plan_column(flavor, i, info, source.c[info.name], task.metrics, task.compute_histograms)
             for i, info in enumerate(task.columns)]
    runner = FusedRunner(conn, flavor, source)

    raw, failed = runner.run([Item(ROWS, func.count()), *(item for p in plans for item in p.items)])
    row_count = int(raw.pop(ROWS))
    plans = _numbers_only(plans, raw, failed, runner, flavor, task)
    values = _clean_all(plans, raw, failed)

    histograms = _plan_histograms(plans, values, failed, task.histogram_bins)
    below, hist_failed = runner.run([item for h in histograms.values() for item in h.items])
    failed.update(hist_failed)

    columns = tuple(_column_profile(p, values[p.index], failed, row_count, histograms.get(p.index), below)
                    for p in plans)
    return ProfilingResult(warehouse=task.warehouse, schema=task.schema_, table=task.table, row_count=row_count,
                           columns=columns, profiled_at=started, duration_seconds=time.perf_counter() - clock,
                           queries=runner.queries)


def _numbers_only(plans: list[ColumnPlan], raw: dict[Key, Any], failed: dict[Key, str], runner: FusedRunner,
                  flavor: Flavor, task: TaskSpec) -> list[ColumnPlan]:
    """The plans, with the numeric columns found holding values that are no numbers (SQLite) planned
    again without them; their aggregates are recomputed in one more select, replacing the first ones."""
    redo = {p.index: plan_column(flavor, p.index, p.info, runner.source.c[p.info.name], task.metrics,
                                 task.compute_histograms, numbers_only=True)
            for p in plans if holds_non_numbers(p, raw)}
    if not redo:
        return plans
    for key in [k for k in (*raw, *failed) if k[0] in redo]:
        raw.pop(key, None)
        failed.pop(key, None)
    again, again_failed = runner.run([item for p in redo.values() for item in p.items])
    raw.update(again)
    failed.update(again_failed)
    return [redo.get(p.index, p) for p in plans]


def _clean_all(plans: list[ColumnPlan], raw: dict[Key, Any], failed: dict[Key, str]) -> dict[int, dict[str, Any]]:
    """JSON-safe values by column index and aggregate; values that cannot be stored move to ``failed``."""
    values: dict[int, dict[str, Any]] = {}
    for plan in plans:
        column = values[plan.index] = {}
        for item in plan.items:
            if item.key in raw:
                value, error = clean(item.key[1], plan.info.category, raw[item.key])
                if error:
                    failed[item.key] = error
                else:
                    column[item.key[1]] = value
    return values


def _plan_histograms(plans: list[ColumnPlan], values: dict[int, dict[str, Any]], failed: dict[Key, str],
                     bins: int) -> dict[int, HistogramPlan]:
    out: dict[int, HistogramPlan] = {}
    for plan in plans:
        deps = plan.needs("histogram")
        if "histogram" not in plan.metrics or any((plan.index, agg) in failed for agg in deps):
            continue
        lo, hi, total = (values[plan.index][agg] for agg in deps)
        try:
            hist = plan_histogram(plan, lo, hi, total, bins)
        except OverflowError as exc:
            failed[(plan.index, "histogram")] = str(exc)
            continue
        if hist is not None:
            out[plan.index] = hist
    return out


def _column_profile(plan: ColumnPlan, raw: dict[str, Any], failed: dict[Key, str], row_count: int,
                    hist: HistogramPlan | None, below: dict[Key, Any]) -> ColumnProfile:
    """The column's metrics from its clean aggregate values ``raw``, or the reason each failed."""
    metrics: dict[str, Any] = {}
    errors: dict[str, str] = {}
    for metric in plan.metrics:
        keys = [(plan.index, agg) for agg in plan.needs(metric)]
        if metric == "histogram":
            keys += [(plan.index, "histogram")] + ([item.key for item in hist.items] if hist else [])
        bad = next((failed[k] for k in keys if k in failed), None)
        if bad is not None:
            errors[metric] = bad
        elif metric == "histogram":
            metrics[metric] = hist.result([int(below[item.key]) for item in hist.items]) if hist else None
        elif (value := base_value(plan, metric, raw, row_count)) or metric not in REPORTED_WHEN_FOUND:
            metrics[metric] = value
    return ColumnProfile(name=plan.info.name, type=plan.info.type, metrics=metrics, errors=errors)
