"""The serialized execution plan: plain data, no behaviour beyond digests.

A plan is what ``baselinr plan`` writes and ``baselinr apply`` executes. It is canonical
JSON (see ``planner.canonical``); ``specs/plan.schema.json`` is generated from these models.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SerializerFunctionWrapHandler, model_serializer

from baselinr.connectors.catalog import ColumnInfo, TableKind

FORMAT_VERSION = 1
# Format versions this code can read. Bump FORMAT_VERSION on an incompatible change and keep
# reading older ones here for as long as a converter exists (see specs/PLAN_FORMAT.md).
READABLE_FORMAT_VERSIONS = (1,)


class PlanModel(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class SelectionRef(PlanModel):
    """Which ``profiling.tables`` entry produced a task, so reviewers see why it is there."""

    index: int = Field(description="Position in profiling.tables (0-based).")
    kind: Literal["table", "pattern", "schema"]
    description: str = Field(description="Human summary, e.g. \"pattern 'fl*' (glob) in main\".")


class TaskSpec(PlanModel):
    """One table to profile, with everything needed to run it without the config."""

    id: str = Field(description="<warehouse>.<schema>.<table>")
    kind: Literal["profile"] = "profile"
    warehouse: str
    schema_: str = Field(alias="schema")
    table: str
    table_kind: TableKind
    columns: tuple[ColumnInfo, ...] = Field(description="Columns to profile, with types seen at plan time.")
    fingerprint: str = Field(description="Schema fingerprint of ALL the table's columns at plan time.")
    metrics: tuple[str, ...]
    compute_histograms: bool
    histogram_bins: int
    selection: SelectionRef
    estimated_rows: int | None = Field(None, description="The database's row estimate at plan time; orders tasks, "
                                                         "and is left out of the task digest.")
    depends_on: tuple[str, ...] = ()
    digest: str = Field("", description="sha256 of the task's canonical JSON without this field and estimated_rows.")


class WarehouseSpec(PlanModel):
    type: str
    cap: int = Field(description="Most tasks of this warehouse that run at once: min(limit, max_workers).")
    limit: int | None = Field(None, description="The warehouse's own limit (warehouse_limits entry, else the built-in "
                                                "default, else 64); `apply --max-workers N` runs it at min(limit, N). "
                                                "Absent (plans from before it existed): the cap.")
    connection: dict[str, Any] = Field(description="Connection settings without secrets; ${VAR} references kept.")

    @model_serializer(mode="wrap")
    def _absent_limit_stays_absent(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        # An older plan without `limit` must dump (and so digest) exactly as it was written.
        data = handler(self)
        if data.get("limit") is None:
            data.pop("limit", None)
        return data

    @property
    def own_limit(self) -> int:
        """The limit to cap by ``max_workers`` at run time."""
        return self.limit if self.limit is not None else self.cap


class Batch(PlanModel):
    id: str
    level: int = Field(description="Dependency level (topological generation), 0 first.")
    warehouse: str
    tasks: tuple[str, ...]


class ExecutionSettings(PlanModel):
    max_workers: int
    batch_size: int
    queue_size: int


class WarehouseSummary(PlanModel):
    tables: int
    columns: int
    metrics: int


class Plan(PlanModel):
    format_version: int = FORMAT_VERSION
    baselinr_version: str
    plan_digest: str = Field("", description="sha256 of the canonical plan without this field.")
    config_digest: str
    environment: str
    execution: ExecutionSettings
    warehouses: dict[str, WarehouseSpec]
    batches: tuple[Batch, ...]
    tasks: tuple[TaskSpec, ...]
    warnings: tuple[str, ...] = ()
    summary: dict[str, WarehouseSummary]

    def task(self, task_id: str) -> TaskSpec:
        """The task with this id (KeyError if none); O(1) after the first call for the same plan."""
        global _last_index
        # Kept outside the model: a private attribute would take part in == and survive model_copy.
        index = _last_index
        if index[0] is not self.tasks:
            index = _last_index = (self.tasks, {t.id: t for t in self.tasks})
        return index[1][task_id]


_last_index: tuple[tuple[TaskSpec, ...], dict[str, TaskSpec]] = ((), {})
