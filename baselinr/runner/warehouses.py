"""Connections for a plan's warehouses: from the config (credentials) or from the plan itself.

A plan holds connection settings without secrets, ``${VAR}`` references kept. Without a config,
the references are resolved from the environment (PostgreSQL also reads ``PGPASSWORD``).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.engine import Engine

from baselinr.config import BaselinrConfig
from baselinr.config.loader import parse_config
from baselinr.config.models import ConnectionConfig, ExecutionConfig
from baselinr.connectors import create_engine
from baselinr.errors import ConfigError
from planner.models import Plan


def plan_connections(plan: Plan, config: BaselinrConfig | None) -> dict[str, ConnectionConfig]:
    """Connection of every warehouse the plan uses; ``ConfigError`` names a missing one."""
    if config is None:
        sources = {name: {"type": wh.type, **wh.connection} for name, wh in plan.warehouses.items()}
        return parse_config({"sources": sources}, source="plan connections").warehouses
    known = config.warehouses
    missing = sorted(set(plan.warehouses) - set(known))
    if missing:
        raise ConfigError(f"warehouse {missing[0]!r} of the plan is not defined in the config "
                          f"(defined: {', '.join(sorted(known)) or 'none'})")
    return {name: known[name] for name in plan.warehouses}


def secrets_of(connections: dict[str, ConnectionConfig], config: BaselinrConfig | None) -> list[str]:
    """Every secret value that must never appear in a stored or printed message."""
    conns = list(connections.values()) + ([config.storage.connection] if config else [])
    return [c.password.get_secret_value() for c in conns if c.password is not None]


def open_engines(connections: dict[str, ConnectionConfig], max_workers: int) -> dict[str, Engine]:
    """One engine per warehouse, pools sized for ``max_workers``; a missing SQLite/DuckDB file fails
    each task of its warehouse (never silently created empty)."""
    execution = ExecutionConfig.model_construct(**{**ExecutionConfig().model_dump(), "max_workers": max_workers})
    return {name: create_engine(conn, execution, must_exist=True) for name, conn in connections.items()}


def dispose(engines: dict[str, Any]) -> None:
    for engine in engines.values():
        engine.dispose()
