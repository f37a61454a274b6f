"""Snapshots (syrupy) of the plan JSON, the review table and a diff over the multi-warehouse fixture.

The pinned values are checked field by field in test_planner_compile.py; these snapshots pin the
exact bytes a user commits and reviews. Update with `pytest --snapshot-update` after reviewing.
"""

from __future__ import annotations

import pytest

import planner
from tests.test_planner_fixtures import multi_catalog, multi_config


@pytest.fixture
def plan(monkeypatch: pytest.MonkeyPatch) -> planner.Plan:
    monkeypatch.delenv("PLANNER_TEST_PGHOST", raising=False)
    monkeypatch.delenv("PLANNER_TEST_SNOW_PW", raising=False)
    return planner.compile(multi_config(), multi_catalog())


def test_plan_json(plan: planner.Plan, snapshot) -> None:
    assert planner.dumps_plan(plan) == snapshot


def test_plan_review_table(plan: planner.Plan, snapshot) -> None:
    assert planner.render_plan_text(plan) == snapshot


def test_diff_after_config_edit(plan: planner.Plan, snapshot) -> None:
    edited = multi_config(execution={"max_workers": 4, "batch_size": 3, "warehouse_limits": {"dwh": 4}})
    new = planner.compile(edited, multi_catalog())
    assert planner.render_diff_text(planner.diff(plan, new)) == snapshot
