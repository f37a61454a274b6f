"""The profiling engine: one table -> ``ProfilingResult`` in as few scans as the database allows."""

from baselinr.profiling.fused import MAX_SELECT_ITEMS
from baselinr.profiling.profiler import profile_table
from baselinr.profiling.result import ColumnProfile, ProfilingResult

__all__ = ["MAX_SELECT_ITEMS", "ColumnProfile", "ProfilingResult", "profile_table"]
