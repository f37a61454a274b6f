"""Equal-width histograms, all of a table's columns counted in one fused select.

``histogram_bins`` bins of equal width between the column's min and max (known from the first
query). Bin ``k`` holds ``edges[k] <= x < edges[k+1]``; the last bin also holds ``x == max``.
Edge ``i`` is ``min + (max - min) * i / bins``: exact for integers (thresholds are the integer
ceiling of the exact edge, so the database compares integers) and Decimals (computed with
enough digits), the plain float expression for floats. Integer bounds with values that may be
reals between them (SQLite keeps 2.5 in an INTEGER column) compare integers with the floor and
ceiling of the exact edge and reals with its float. The select counts values below each
inner edge, ``count(CASE WHEN x < edge_i THEN 1 END)`` (one scan whatever the number of
columns); bin counts are the differences, the last one taken from the column's finite count.
When min == max there is one bin holding every value.

Stored as ``{"edges": [...], "counts": [...]}``: for integer columns the outer edges are the
int min/max and the inner ones floats; Decimal columns get Decimal edges (80 significant digits).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from decimal import Decimal, localcontext
from fractions import Fraction
from typing import Any

from sqlalchemy import and_, case, func, literal, or_
from sqlalchemy.sql.elements import ColumnElement

from baselinr.profiling.aggregates import ColumnPlan, Item

# Digits for Decimal edges: numeric(38, s) bounds and their differences stay exact.
_DECIMAL_DIGITS = 80


@dataclass(frozen=True)
class HistogramPlan:
    """Edges of one column's histogram and the items counting values below its inner edges."""

    edges: tuple[Any, ...]
    items: tuple[Item, ...]
    total: int

    def result(self, below: list[int]) -> dict[str, list[Any]]:
        """{"edges": [...], "counts": [...]} from the counts below each inner edge (in item order)."""
        cumulative = [*below, self.total]
        counts = [cumulative[0], *(b - a for a, b in zip(cumulative, cumulative[1:]))]
        return {"edges": list(self.edges), "counts": counts}


def plan_histogram(plan: ColumnPlan, lo: Any, hi: Any, total: int, bins: int) -> HistogramPlan | None:
    """None when the column has no values to count; else the edges and threshold items."""
    if lo is None or hi is None or not total:
        return None
    if lo == hi:
        return HistogramPlan((lo, hi), (), total)
    edges, thresholds = _edges(lo, hi, bins)
    if not all(_finite(e) for e in edges):
        raise OverflowError(f"range {lo}..{hi} is too wide for float edges")
    items = tuple(Item((plan.index, f"below_{i}"), func.count(case((_below(plan, t), 1))))
                  for i, t in enumerate(thresholds, start=1))
    return HistogramPlan(tuple(edges), items, total)


def _below(plan: ColumnPlan, threshold: Any) -> ColumnElement:
    """``value < threshold``; a ``Fraction`` (an exact edge between integer bounds) compared exactly."""
    value = plan.value
    if not isinstance(threshold, Fraction):
        return value < literal(threshold)
    if plan.integral or threshold.denominator == 1:
        return value < literal(math.ceil(threshold))
    floor, ceiling = math.floor(threshold), math.ceil(threshold)
    return or_(value <= literal(floor), and_(value < literal(ceiling), value < literal(float(threshold))))


def _edges(lo: Any, hi: Any, bins: int) -> tuple[list[Any], list[Any]]:
    """(edges, thresholds of the inner edges) in the arithmetic that keeps them exact."""
    if isinstance(lo, int) and isinstance(hi, int):
        exact = [Fraction(lo) + Fraction(hi - lo) * i / bins for i in range(bins + 1)]
        return [lo, *(float(e) for e in exact[1:-1]), hi], exact[1:-1]
    if isinstance(lo, Decimal) or isinstance(hi, Decimal):
        with localcontext() as ctx:
            ctx.prec = _DECIMAL_DIGITS
            lo, hi = Decimal(lo), Decimal(hi)
            edges = [lo, *(lo + (hi - lo) * i / bins for i in range(1, bins)), hi]
        return edges, edges[1:-1]
    lo, hi = float(lo), float(hi)
    edges = [lo, *(lo + (hi - lo) * i / bins for i in range(1, bins)), hi]
    return edges, edges[1:-1]


def _finite(value: Any) -> bool:
    return value.is_finite() if isinstance(value, Decimal) else math.isfinite(value)
