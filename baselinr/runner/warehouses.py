"""Connections for a plan's warehouses: from the config (credentials) or from the plan itself.

A plan holds connection settings without secrets, ``${VAR}`` references kept. Without a config,
the references are resolved from the environment (PostgreSQL also reads ``PGPASSWORD``). With one,
the config supplies credentials and runtime settings (user, password, driver parameters, lock
timeout), but where the data is must be what the plan was reviewed against: a config naming
another file, host, database or schema for a warehouse is refused.
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

# What says where a warehouse's data is (as written, ${VAR} references included); the rest of a
# connection (user, password, driver parameters, lock timeout) may differ between plan and apply.
IDENTITY_FIELDS = ("type", "host", "port", "database", "schema", "filepath")


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
    for name, warehouse in sorted(plan.warehouses.items()):
        planned = {"type": warehouse.type, **warehouse.connection}
        written = {"type": known[name].type, **config.public_connection(name)}
        moved = _moved(planned, written, known[name])
        if moved is not None:
            raise ConfigError(f"warehouse {name!r}: the config's {moved} ({written.get(moved)!r}) is not the plan's "
                              f"({planned.get(moved)!r}); apply with the config the plan was compiled from, or re-run "
                              "baselinr plan with this one")
    return {name: known[name] for name in plan.warehouses}


def _moved(planned: dict[str, Any], written: dict[str, Any], configured: ConnectionConfig) -> str | None:
    """The first identity field that differs both as written and as resolved from the environment
    (a plan's ``${VAR:-x}`` and a config's literal ``x`` agree), or None."""
    try:
        resolved = parse_config({"sources": {"plan": planned}}, source="plan connection").warehouses["plan"]
    except ConfigError:  # a ${VAR} the environment lacks: only the written form can agree
        resolved = None
    actual = configured.model_dump(by_alias=True)
    return next((key for key in IDENTITY_FIELDS if planned.get(key) != written.get(key)
                 and (resolved is None or resolved.model_dump(by_alias=True).get(key) != actual.get(key))), None)


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
