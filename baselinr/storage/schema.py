"""Tables Baselinr keeps in the storage database: results, runs, and runner state.

Created once (``create_tables: true``) with ``metadata.create_all``; writes elsewhere never
issue DDL. Table names of results and runs follow the storage config.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import (
    BigInteger, Column, DateTime, Float, Index, Integer, MetaData, PrimaryKeyConstraint, String, Table, Text,
)

NAME = String(512)
# Counts and surrogate ids outgrow 2^31 (PostgreSQL integer). SQLite's INTEGER is already 64-bit, and
# only "INTEGER PRIMARY KEY" autoincrements there (BIGINT would leave the id NULL).
BIG = BigInteger().with_variant(Integer, "sqlite")


@dataclass(frozen=True)
class StorageTables:
    metadata: MetaData
    results: Table
    runs: Table
    plan_runs: Table
    task_runs: Table


def build_tables(results_table: str = "baselinr_results", runs_table: str = "baselinr_runs") -> StorageTables:
    """The storage schema, with the configured names for results and runs."""
    md = MetaData()
    results = Table(
        results_table, md,
        Column("id", BIG, primary_key=True, autoincrement=True),
        Column("run_id", String(64), nullable=False),
        Column("warehouse_name", NAME, nullable=False),
        Column("dataset_name", NAME, nullable=False),
        Column("schema_name", NAME, nullable=False),
        Column("column_name", NAME, nullable=False),
        Column("column_type", String(256), nullable=False),
        Column("metric_name", String(64), nullable=False),
        Column("metric_value", Text, nullable=True, comment="JSON text; decimals keep their exact digits"),
        Column("error", Text, nullable=True, comment="Why the metric could not be computed (metric_value is NULL)"),
        Column("profiled_at", DateTime(timezone=True), nullable=False),
        Index(f"ix_{results_table}_run_table", "run_id", "warehouse_name", "schema_name", "dataset_name"),
    )
    runs = Table(
        runs_table, md,
        Column("run_id", String(64), nullable=False),
        Column("warehouse_name", NAME, nullable=False),
        Column("dataset_name", NAME, nullable=False),
        Column("schema_name", NAME, nullable=False),
        Column("profiled_at", DateTime(timezone=True), nullable=False),
        Column("environment", String(128), nullable=False),
        Column("status", String(32), nullable=False),
        Column("row_count", BIG, nullable=True),
        Column("column_count", Integer, nullable=True),
        Column("duration_seconds", Float, nullable=True),
        PrimaryKeyConstraint("run_id", "warehouse_name", "schema_name", "dataset_name"),
    )
    plan_runs = Table(
        "baselinr_plan_runs", md,
        Column("run_id", String(64), primary_key=True),
        Column("plan_digest", String(64), nullable=False),
        Column("plan_json", Text, nullable=False),
        Column("status", String(32), nullable=False),
        Column("environment", String(128), nullable=False),
        Column("started_at", DateTime(timezone=True), nullable=False),
        Column("finished_at", DateTime(timezone=True), nullable=True),
        Column("host", String(256), nullable=True),
        Column("pid", Integer, nullable=True),
        Column("lease_owner", String(128), nullable=True),
        Column("lease_expires_at", DateTime(timezone=True), nullable=True),
    )
    task_runs = Table(
        "baselinr_task_runs", md,
        Column("run_id", String(64), nullable=False),
        Column("task_id", String(1600), nullable=False),
        Column("task_digest", String(64), nullable=False),
        Column("status", String(32), nullable=False),
        Column("attempts", Integer, nullable=False, default=0),
        Column("started_at", DateTime(timezone=True), nullable=True),
        Column("finished_at", DateTime(timezone=True), nullable=True),
        Column("duration_seconds", Float, nullable=True),
        Column("error_type", String(128), nullable=True),
        Column("error_message", Text, nullable=True),
        Column("backend_pid", Integer, nullable=True, comment="PostgreSQL backend running the task's query"),
        PrimaryKeyConstraint("run_id", "task_id"),
    )
    return StorageTables(md, results, runs, plan_runs, task_runs)
