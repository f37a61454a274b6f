"""What profiling one table produces."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class ColumnProfile(BaseModel):
    model_config = ConfigDict(frozen=True)

    name: str
    type: str
    metrics: dict[str, Any] = Field(default_factory=dict, description="JSON-safe metric values (Decimal kept exact).")
    errors: dict[str, str] = Field(default_factory=dict, description="Metric name -> why it could not be computed.")


class ProfilingResult(BaseModel):
    model_config = ConfigDict(frozen=True, populate_by_name=True)

    warehouse: str
    schema_: str = Field(alias="schema")
    table: str
    row_count: int
    columns: tuple[ColumnProfile, ...]
    profiled_at: datetime = Field(description="Time-zone-aware UTC.")
    duration_seconds: float
    queries: int = Field(0, description="SQL statements issued to profile the table.")
