"""Which aggregates profile a column, and how metrics are derived from their values.

A column contributes ``Item``s (one labelled aggregate expression each) to the fused query of
its table; metrics are then computed from the raw aggregate values. Which metrics apply is
decided by the column's category (SQLAlchemy type classes, see ``connectors.catalog``):

- every column: count, null_count, null_ratio, distinct_count, unique_ratio;
- integer/float/decimal: min, max, mean, stddev, histogram;
- columns that can hold NaN/±Infinity (floats; PostgreSQL numeric): nan_count, inf_count, and
  those values are kept out of every other statistic (distinct, unique_ratio, min...);
- SQLite numeric columns, which can hold text and blobs: those values are kept out likewise and
  counted by non_numeric_count. Filtering every column up front would slow every scan, so the
  first select reads the column as it is, and a column whose max turns out to be text or a blob
  (SQLite sorts them after every number: ``holds_non_numbers``) is planned again with
  ``numbers_only`` and recomputed. ``profiling.metrics`` cannot select non_numeric_count: it
  comes with any statistic of the values, reported when not 0 (``REPORTED_WHEN_FOUND``);
- string: min, max, min_length, max_length, avg_length (lengths in characters, of the text form);
- temporal: min, max (of instants: SQLite timestamp text is compared in UTC); boolean: mean
  (the ratio of true values).

unique_ratio is distinct values / the non-null values left in (finite numbers for floats).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from sqlalchemy import case, func, not_, or_
from sqlalchemy.sql.elements import ColumnElement

from baselinr.connectors.catalog import ColumnInfo
from baselinr.profiling.dialects import Flavor

BASE_METRICS = ("count", "null_count", "null_ratio", "distinct_count", "unique_ratio")
_BY_CATEGORY = {
    "integer": ("min", "max", "mean", "stddev", "histogram"),
    "float": ("min", "max", "mean", "stddev", "histogram"),
    "decimal": ("min", "max", "mean", "stddev", "histogram"),
    "string": ("min", "max", "min_length", "max_length", "avg_length"),
    "temporal": ("min", "max"),
    "boolean": ("mean",),
}
ROWS = (-1, "rows")
# Counts of the values kept out of the statistics, by metric: the raw aggregate each reads.
_LEFT_OUT = {"nan_count": "nan", "inf_count": "inf", "non_numeric_count": "non_numeric"}
# Metrics that read no value kept in: with only these, non_numeric_count would qualify nothing.
_NO_VALUES = frozenset({"count", "null_count", "null_ratio", "nan_count", "inf_count"})
# Metrics stored only when not 0 (no config can select them).
REPORTED_WHEN_FOUND = frozenset({"non_numeric_count"})


@dataclass(frozen=True)
class Item:
    """One aggregate of the fused select; ``key`` is (column index, aggregate name)."""

    key: tuple[int, str]
    expr: ColumnElement


@dataclass(frozen=True)
class ColumnPlan:
    """What to compute for one column: its metrics, aggregates and value expression."""

    index: int
    info: ColumnInfo
    metrics: tuple[str, ...]
    items: tuple[Item, ...]
    value: ColumnElement  # the column as compared: values left out (NaN, ±Infinity, SQLite text in numbers) NULL,
    #                       SQLite timestamps UTC
    special: bool  # the column can hold values left out of its statistics
    integral: bool  # every value is an integer (an integer column of a database that enforces types)

    @property
    def valid_key(self) -> str:
        return valid_key(self.special)

    def needs(self, metric: str) -> tuple[str, ...]:
        return needs(metric, self.special)


def valid_key(special: bool) -> str:
    """Aggregate counting the values statistics are computed over (non-null, and finite)."""
    return "valid" if special else "nonnull"


def needs(metric: str, special: bool) -> tuple[str, ...]:
    """Raw aggregates a metric is derived from."""
    if metric == "count":
        return ()
    if metric in ("null_count", "null_ratio"):
        return ("nonnull",)
    if metric == "distinct_count":
        return ("distinct",)
    if metric == "unique_ratio":
        return ("distinct", valid_key(special))
    if metric == "histogram":
        return ("min", "max", valid_key(special))
    if metric in _LEFT_OUT:
        return (_LEFT_OUT[metric],)
    return (metric,)


def plan_column(flavor: Flavor, index: int, info: ColumnInfo, col: ColumnElement, metrics: tuple[str, ...],
                histograms: bool, numbers_only: bool = False) -> ColumnPlan:
    """The metrics of ``metrics`` that apply to the column, and the aggregates they need;
    ``numbers_only``: keep values that are no numbers (SQLite text, blobs) out of the statistics."""
    applicable = set(BASE_METRICS) | set(_BY_CATEGORY.get(info.category, ()))
    nan, inf = flavor.nan_values(info.category), flavor.inf_values(info.category)
    stray = flavor.non_numbers(info.category, col)
    if info.category == "float" or nan or inf:
        applicable |= {"nan_count", "inf_count"}
    if not histograms:
        applicable.discard("histogram")
    chosen = tuple(m for m in metrics if m in applicable)
    if stray is not None and set(chosen) - _NO_VALUES:
        chosen += ("non_numeric_count",)
    left_out = [c for c in (stray if numbers_only else None, col.in_(nan + inf) if nan or inf else None)
                if c is not None]
    special = bool(left_out)
    value = case((not_(or_(*left_out)), col)) if special else flavor.comparable(info, col)
    # Built only when wanted: a 1,600-column table would otherwise build ~20,000 unused expressions.
    build: dict[str, Callable[[], ColumnElement]] = {
        "nonnull": lambda: func.count(col),
        "valid": lambda: func.count(value),
        "distinct": lambda: func.count(_distinct_operand(flavor, info.category, value).distinct()),
        "min": lambda: func.min(value),
        "max": lambda: func.max(value),
        "mean": lambda: flavor.true_ratio(col) if info.category == "boolean" else func.avg(value),
        "stddev": lambda: flavor.stddev(info, value),
        "min_length": lambda: func.min(flavor.char_length(col)),
        "max_length": lambda: func.max(flavor.char_length(col)),
        "avg_length": lambda: func.avg(flavor.char_length(col)),
    }
    # A column that cannot hold NaN (or Infinity) has a count of 0 by construction: no aggregate.
    if nan:
        build["nan"] = lambda: func.count(case((col.in_(nan), 1)))
    if inf:
        build["inf"] = lambda: func.count(case((col.in_(inf), 1)))
    if stray is not None and numbers_only:
        build["non_numeric"] = lambda: func.count(case((stray, 1)))
    wanted = dict.fromkeys(agg for m in chosen for agg in needs(m, special) if agg in build)
    if "non_numeric_count" in chosen and not numbers_only:
        wanted["max"] = None  # tells whether the column holds values that are no numbers
    items = tuple(Item((index, agg), build[agg]()) for agg in wanted)
    return ColumnPlan(index, info, chosen, items, value, special, info.category == "integer" and flavor.enforces_types)


def holds_non_numbers(plan: ColumnPlan, raw: dict[tuple[int, str], Any]) -> bool:
    """Whether a column planned without ``numbers_only`` turned out to hold text or blobs (SQLite)."""
    return "non_numeric_count" in plan.metrics and isinstance(raw.get((plan.index, "max")), (str, bytes))


def _distinct_operand(flavor: Flavor, category: str, value: ColumnElement) -> ColumnElement:
    # Types outside the known families may lack equality (json, xml, point): compare text forms.
    return flavor.as_text(value) if category == "other" else value


def ratio(part: int | None, whole: int | None) -> float | None:
    """part / whole, None when the whole is empty or unknown (ratios of an empty table)."""
    if part is None or not whole:
        return None
    return part / whole


def base_value(plan: ColumnPlan, metric: str, raw: dict[str, Any], row_count: int) -> Any:
    """A metric other than histogram from the raw aggregates (all present in ``raw``)."""
    if metric == "count":
        return row_count
    if metric == "null_count":
        return row_count - raw["nonnull"]
    if metric == "null_ratio":
        return ratio(row_count - raw["nonnull"], row_count)
    if metric == "distinct_count":
        return raw["distinct"]
    if metric == "unique_ratio":
        return ratio(raw["distinct"], raw[plan.valid_key])
    if metric in _LEFT_OUT:
        return raw.get(_LEFT_OUT[metric], 0)
    return raw[metric]
