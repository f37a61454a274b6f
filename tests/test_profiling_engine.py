"""``ProfileEngine.profile_table``: one table of a config's warehouse, on a real SQLite file."""

from __future__ import annotations

import sqlite3
import statistics
from pathlib import Path

import pytest

from baselinr.config import parse_config
from baselinr.errors import PlanError, TaskError
from baselinr.events import bus as ev
from baselinr.events.bus import BaseEvent, EventBus
from baselinr.profiling.engine import ProfileEngine

AMOUNTS = [3, 1, 4, 1, 5, None]


@pytest.fixture
def config(tmp_path: Path):
    warehouse = tmp_path / "warehouse.db"
    with sqlite3.connect(warehouse) as db:
        db.execute("CREATE TABLE orders (amount INTEGER, note TEXT)")
        db.executemany("INSERT INTO orders VALUES (?, ?)", [(a, f"n{a}") for a in AMOUNTS])
        db.execute("CREATE TABLE other (x INTEGER)")
    db.close()
    return parse_config({"source": {"type": "sqlite", "name": "wh", "filepath": str(warehouse)},
                         "storage": {"connection": {"type": "sqlite", "filepath": str(tmp_path / "store.db")}},
                         "profiling": {"tables": [{"select_schema": True, "schema": "main"}]}}, source="test")


def test_profile_table_returns_that_table_only(config) -> None:
    engine = ProfileEngine(config)
    assert len(engine.profile()) == 2  # the config selects both tables
    result = engine.profile_table("main", "orders")
    assert (result.warehouse, result.schema_, result.table, result.row_count) == ("wh", "main", "orders", 6)
    amount = next(c for c in result.columns if c.name == "amount").metrics
    present = [a for a in AMOUNTS if a is not None]
    assert (amount["min"], amount["max"], amount["null_count"], amount["distinct_count"]) == (1, 5, 1, 4)
    assert amount["mean"] == pytest.approx(statistics.fmean(present), rel=1e-12)
    assert amount["stddev"] == pytest.approx(statistics.stdev(present), rel=1e-12)
    assert [c.name for c in result.columns] == ["amount", "note"]


def test_profile_table_raises_for_a_missing_or_failed_table(config) -> None:
    with pytest.raises(PlanError, match="main.missing"):
        ProfileEngine(config).profile_table("main", "missing")

    def drop_orders(event: BaseEvent) -> None:  # the table goes between planning and profiling
        if event.event_type == ev.PROFILING_STARTED:
            with sqlite3.connect(config.source.filepath) as db:
                db.execute("DROP TABLE IF EXISTS orders")
            db.close()

    bus = EventBus()
    failures: list[BaseEvent] = []
    bus.register(drop_orders)
    bus.register(lambda event: failures.append(event) if event.event_type == ev.TABLE_PROFILING_FAILED else None)
    with pytest.raises(TaskError, match="profiling main.orders failed"):
        ProfileEngine(config, event_bus=bus).profile_table("main", "orders")
    assert [f.metadata["error_type"] for f in failures] == ["StalePlanError"]
