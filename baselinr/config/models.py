"""Pydantic models of the YAML job spec (the config language).

Every model forbids unknown keys so a typo is reported (with a "did you mean" hint by the
loader) instead of being silently ignored.
"""

from __future__ import annotations

import os
import re
from typing import Annotated, Any, Literal, get_args

from pydantic import (BaseModel, BeforeValidator, ConfigDict, Field, PrivateAttr, SecretStr, ValidationInfo,
                      field_validator, model_validator)

WarehouseType = Literal["postgres", "sqlite", "mysql", "duckdb", "snowflake", "bigquery", "redshift"]
FILE_WAREHOUSES = ("sqlite", "duckdb")
MAX_WORKERS = 64  # the most execution.max_workers (and --max-workers) may be
DEFAULT_SCHEMA = {"sqlite": "main", "duckdb": "main", "postgres": "public", "redshift": "public"}

# Keys whose values are credentials; they never reach a plan, a log line, a state row or an event.
SECRET_KEY_RE = re.compile(r"pass(word)?|secret|token|private|credential|api_?key|key_?file|^key$", re.I)

ALL_METRICS = (
    "count", "null_count", "null_ratio", "distinct_count", "unique_ratio",
    "min", "max", "mean", "stddev", "histogram",
    "min_length", "max_length", "avg_length",
    "nan_count", "inf_count",
)


def _not_a_bool(value: Any) -> Any:
    """Refuse YAML ``true``/``false`` where a number is expected (pydantic would take it as 1/0);
    a numeric string such as ``"4"`` (what ``${VAR}`` substitution yields) is still accepted."""
    if isinstance(value, bool):
        raise ValueError(f"expected a number, got {str(value).lower()}")
    return value


Int = Annotated[int, BeforeValidator(_not_a_bool)]
Float = Annotated[float, BeforeValidator(_not_a_bool)]


class StrictModel(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class ConnectionConfig(StrictModel):
    """How to reach one database (a warehouse to profile, or the results storage)."""

    type: WarehouseType
    name: str | None = Field(None, description="Warehouse name used in task ids; defaults to the type.")
    host: str | None = Field(None, description="Server host; the account for snowflake.")
    port: Int | None = Field(None, ge=1, le=65535)
    database: str | None = Field(None, description="Database; the project for bigquery.")
    username: str | None = None
    password: SecretStr | None = Field(None, description="Never written to plans, logs, state or events.")
    schema_: str | None = Field(None, alias="schema", description="Default schema (main for SQLite/DuckDB, public for PostgreSQL).")
    filepath: str | None = Field(None, description="Database file for sqlite/duckdb (relative to the working directory).")
    extra_params: dict[str, Any] = Field(default_factory=dict, description="Driver URL query parameters (sslmode, warehouse, role...).")
    busy_timeout: Float | None = Field(None, ge=0, le=3600, description="SQLite: seconds to wait for a lock held by "
                                       "another writer before failing (default 30).")

    @model_validator(mode="after")
    def _needs_location(self) -> "ConnectionConfig":
        if self.type in FILE_WAREHOUSES and not self.filepath:
            raise ValueError(f"a {self.type} connection needs 'filepath'")
        if self.type not in FILE_WAREHOUSES and self.type != "bigquery" and not self.host:
            raise ValueError(f"a {self.type} connection needs 'host'")
        if self.busy_timeout is not None and self.type != "sqlite":
            raise ValueError(f"'busy_timeout' applies to sqlite connections only, not {self.type}")
        return self

    @property
    def default_schema(self) -> str | None:
        return self.schema_ or DEFAULT_SCHEMA.get(self.type)


def _default_storage_connection() -> ConnectionConfig:
    return ConnectionConfig(type="sqlite", filepath=".baselinr/baselinr.db")


class StorageConfig(StrictModel):
    """Where results, runs and task state are kept."""

    connection: ConnectionConfig = Field(default_factory=_default_storage_connection)
    results_table: str = "baselinr_results"
    runs_table: str = "baselinr_runs"
    create_tables: bool = Field(True, description="Create the results, runs and state tables when missing.")


class TableSelection(StrictModel):
    """One entry of ``profiling.tables``: an explicit table, a pattern, or a whole schema."""

    table: str | None = Field(None, description="An explicit table (or view) name.")
    schema_: str | None = Field(None, alias="schema", description="Schema to look in (default: the warehouse's).")
    source: str | None = Field(None, description="Warehouse name (from `sources`) this selection reads.")
    pattern_type: Literal["glob", "regex"] = "glob"
    pattern: str | None = Field(None, description="Glob (or regex) matched against table names.")
    select_schema: bool = Field(False, description="Select every table of `schema`.")
    exclude_patterns: list[str] = Field(default_factory=list, description="Globs (regex with pattern_type regex) of tables to leave out.")
    table_types: list[Literal["table", "view", "materialized_view"]] | None = Field(
        None, description="Kinds a pattern or schema selection matches (default: all).")
    columns: list[str] | None = Field(None, description="Column globs to include (default: all).")
    exclude_columns: list[str] = Field(default_factory=list)
    metrics: list[str] | None = Field(None, description="Overrides profiling.metrics for these tables.")
    compute_histograms: bool | None = Field(None, description="Overrides profiling.compute_histograms.")
    histogram_bins: Int | None = Field(None, ge=1, le=1000, description="Overrides profiling.histogram_bins.")
    depends_on: list[str] = Field(default_factory=list, description="Tables ('schema.table' or 'warehouse.schema.table') profiled first.")

    @model_validator(mode="after")
    def _one_kind(self) -> "TableSelection":
        kinds = [k for k, on in (("table", self.table), ("pattern", self.pattern), ("select_schema", self.select_schema)) if on]
        if len(kinds) != 1:
            raise ValueError("give exactly one of 'table', 'pattern' or 'select_schema: true'"
                             + (f" (got {', '.join(kinds)})" if kinds else ""))
        if self.select_schema and not self.schema_:
            raise ValueError("'select_schema: true' needs 'schema'")
        return self

    @field_validator("pattern", "exclude_patterns")
    @classmethod
    def _valid_regex(cls, value: str | list[str] | None, info: ValidationInfo) -> str | list[str] | None:
        if info.data.get("pattern_type") == "regex":
            for pattern in [value] if isinstance(value, str) else value or []:
                try:
                    re.compile(pattern)
                except re.error as exc:
                    raise ValueError(f"invalid regex {pattern!r}: {exc}") from None
        return value

    @field_validator("metrics")
    @classmethod
    def _known_metrics(cls, value: list[str] | None) -> list[str] | None:
        return _check_metrics(value)

    @property
    def kind(self) -> Literal["table", "pattern", "schema"]:
        return "table" if self.table else "pattern" if self.pattern else "schema"


def _check_metrics(value: list[str] | None) -> list[str] | None:
    if value is not None:
        unknown = [m for m in value if m not in ALL_METRICS]
        if unknown:
            raise ValueError(f"unknown metric {unknown[0]!r}; known: {', '.join(ALL_METRICS)}")
    return value


class ProfilingConfig(StrictModel):
    tables: list[TableSelection] = Field(default_factory=list)
    metrics: list[str] = Field(default_factory=lambda: list(ALL_METRICS))
    compute_histograms: bool = True
    histogram_bins: Int = Field(10, ge=1, le=1000)

    _check = field_validator("metrics")(classmethod(lambda cls, v: _check_metrics(v)))


def check_max_workers(value: int) -> int:
    """``value`` when it is 1, or above 1 and at most 4 x this machine's CPU count; else ValueError."""
    cpus = os.cpu_count() or 1
    if value > 1 and value > 4 * cpus:
        raise ValueError(f"max_workers {value} exceeds 4 x CPU count ({4 * cpus} on this machine with {cpus} CPUs)")
    return value


class ExecutionConfig(StrictModel):
    """Parallelism is opt-in: the default ``max_workers=1`` runs sequentially."""

    max_workers: Int = Field(1, ge=1, le=MAX_WORKERS, description="Tables profiled at once; 1 = sequential. At most 4 x CPUs.")
    batch_size: Int = Field(10, ge=1, le=100, description="Tables per plan batch.")
    queue_size: Int = Field(100, ge=10, le=1000, description="Tasks queued ahead of the workers.")
    warehouse_limits: dict[str, Int] = Field(default_factory=dict, description="Cap per warehouse name or type (never above max_workers).")

    _not_above_cpus = field_validator("max_workers")(classmethod(lambda cls, v: check_max_workers(v)))

    @field_validator("warehouse_limits")
    @classmethod
    def _positive_limits(cls, value: dict[str, int]) -> dict[str, int]:
        for key, limit in value.items():
            if limit < 1:
                raise ValueError(f"limit for {key!r} must be at least 1, got {limit}")
        return value


class RetryConfig(StrictModel):
    """Retries of transient errors (lost connection, timeout, lock) per task."""

    enabled: bool = True
    retries: Int = Field(2, ge=0, le=10, description="Extra attempts after the first.")
    backoff_strategy: Literal["exponential", "fixed"] = "exponential"
    min_backoff: Float = Field(0.5, ge=0, le=600)
    max_backoff: Float = Field(30.0, ge=0, le=3600)


class MonitoringConfig(StrictModel):
    enable_metrics: bool = Field(False, description="Serve Prometheus metrics over HTTP during runs.")
    port: Int = Field(9753, ge=1, le=65535)
    keep_alive: bool = Field(False, description="Keep serving metrics after the run ends (until Ctrl-C).")


class HookConfig(StrictModel):
    """One event hook: ``logging``, ``sql``, ``webhook`` or ``custom``."""

    type: Literal["logging", "sql", "webhook", "custom"]
    enabled: bool = True
    level: Literal["debug", "info", "warning", "error"] = "info"
    connection: ConnectionConfig | None = None
    table_name: str = "baselinr_events"
    url: str | None = None
    headers: dict[str, str] = Field(default_factory=dict)
    timeout_seconds: Float = Field(5.0, gt=0, le=300)
    module: str | None = None
    class_name: str | None = None
    params: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _fields_for_type(self) -> "HookConfig":
        needed = {"sql": ("connection",), "webhook": ("url",), "custom": ("module", "class_name")}.get(self.type, ())
        missing = [f for f in needed if getattr(self, f) is None]
        if missing:
            raise ValueError(f"a {self.type} hook needs {', '.join(repr(m) for m in missing)}")
        return self


class HooksConfig(StrictModel):
    enabled: bool = True
    hooks: list[HookConfig] = Field(default_factory=list)


class BaselinrConfig(StrictModel):
    """The whole job spec. Use ``baselinr.config.load_config`` to read one from a file."""

    environment: str = Field("development", description="Recorded with every run and result.")
    source: ConnectionConfig | None = Field(None, description="The one warehouse to profile.")
    sources: dict[str, ConnectionConfig] = Field(default_factory=dict, description="Several warehouses by name (instead of `source`).")
    storage: StorageConfig = Field(default_factory=StorageConfig)
    profiling: ProfilingConfig = Field(default_factory=ProfilingConfig)
    execution: ExecutionConfig = Field(default_factory=ExecutionConfig)
    retry: RetryConfig = Field(default_factory=RetryConfig)
    monitoring: MonitoringConfig = Field(default_factory=MonitoringConfig)
    hooks: HooksConfig = Field(default_factory=HooksConfig)

    # Original ``${VAR}`` templates by dotted path, so plans can keep references, not values.
    _templates: dict[str, str] = PrivateAttr(default_factory=dict)

    @model_validator(mode="after")
    def _sources_consistent(self) -> "BaselinrConfig":
        if self.source is not None and self.sources:
            raise ValueError("give either 'source' or 'sources', not both")
        names = set(self.warehouses)
        if self.profiling.tables and not names:
            raise ValueError("profiling.tables: no warehouse to read the tables from; "
                             "add 'source:' (one warehouse) or 'sources:' (several, by name)")
        for i, sel in enumerate(self.profiling.tables):
            if sel.source is not None and sel.source not in names:
                raise ValueError(f"profiling.tables[{i}].source: unknown source {sel.source!r}; "
                                 f"defined: {', '.join(sorted(names)) or 'none'}")
            if sel.source is None and len(names) > 1:
                raise ValueError(f"profiling.tables[{i}]: several sources are defined, so name one with 'source:'")
        for key in self.execution.warehouse_limits:
            if key not in names and key not in get_args(WarehouseType):
                raise ValueError(f"execution.warehouse_limits: {key!r} is neither a warehouse of this config "
                                 f"({', '.join(sorted(names)) or 'none defined'}) nor a warehouse type "
                                 f"({', '.join(get_args(WarehouseType))})")
        return self

    @property
    def warehouses(self) -> dict[str, ConnectionConfig]:
        """Warehouses by name: ``sources`` as given, or the single ``source`` named after its type."""
        if self.source is not None:
            return {self.source.name or self.source.type: self.source}
        return {name: conn.model_copy(update={"name": name}) for name, conn in self.sources.items()}

    def warehouse_for(self, selection: TableSelection) -> str:
        """Name of the warehouse a selection reads."""
        return selection.source or next(iter(self.warehouses))

    def public_connection(self, name: str) -> dict[str, Any]:
        """Connection settings of a warehouse with secrets removed and ``${VAR}`` references kept."""
        conn = self.warehouses[name]
        prefix = "source" if self.source is not None else f"sources.{name}"
        out: dict[str, Any] = {}
        for field, value in conn.model_dump(by_alias=True, exclude_none=True).items():
            if field == "password" or field == "name":
                continue
            if field == "extra_params":
                value = {k: self._templates.get(f"{prefix}.extra_params.{k}", v)
                         for k, v in value.items() if not SECRET_KEY_RE.search(k)}
                if not value:
                    continue
            else:
                value = self._templates.get(f"{prefix}.{field}", value)
            out[field] = value
        return out
