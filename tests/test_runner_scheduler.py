"""Scheduler alone: readiness, caps, global limit, skips, stop — no threads, no database."""

from __future__ import annotations

import pytest

from baselinr.runner.scheduler import SchedTask, Scheduler


def drain(s: Scheduler) -> list[str]:
    out = []
    while (t := s.next_ready()) is not None:
        out.append(t)
    return out


def test_plan_order_and_global_limit():
    s = Scheduler([SchedTask(f"t{i}", "pg") for i in range(5)], {"pg": 8}, max_workers=3)
    assert drain(s) == ["t0", "t1", "t2"]
    s.mark_finished("t1", True)
    assert drain(s) == ["t3"]
    assert s.running() == 3


def test_cap_never_exceeded_and_capped_warehouse_does_not_block_others():
    tasks = [SchedTask("lite.a", "lite"), SchedTask("lite.b", "lite")] + [SchedTask(f"pg.{i}", "pg") for i in range(6)]
    s = Scheduler(tasks, {"lite": 1, "pg": 8}, max_workers=4)
    started = drain(s)
    # lite is at cap 1 after its first task; the remaining 3 workers go to PostgreSQL work.
    assert started == ["lite.a", "pg.0", "pg.1", "pg.2"]
    assert s.running("lite") == 1
    s.mark_finished("pg.0", True)
    assert drain(s) == ["pg.3"]  # lite.b is earlier in plan order but lite is still at its cap
    s.mark_finished("lite.a", True)
    assert drain(s) == ["lite.b"]  # lite is below its cap again and a worker is free
    assert drain(s) == [] and s.running() == 4 and s.running("lite") == 1


def test_caps_are_clamped_to_max_workers():
    s = Scheduler([SchedTask("a", "w")], {"w": 50}, max_workers=2)
    assert s.caps == {"w": 2}


def test_dependencies_release_only_on_success_and_failures_skip_transitively():
    tasks = [SchedTask("a", "w"), SchedTask("b", "w", ("a",)), SchedTask("c", "w", ("b",)), SchedTask("d", "w")]
    s = Scheduler(tasks, {"w": 4}, max_workers=4)
    assert drain(s) == ["a", "d"]
    assert s.mark_finished("a", False) == [("b", "a"), ("c", "a")]
    assert drain(s) == []
    s.mark_finished("d", True)
    assert s.finished


def test_done_tasks_satisfy_dependencies():
    s = Scheduler([SchedTask("b", "w", ("a",))], {"w": 1}, max_workers=1, done={"a"})
    assert drain(s) == ["b"]


def test_dependent_becomes_ready_after_all_dependencies_succeed():
    s = Scheduler([SchedTask("a", "w"), SchedTask("b", "w"), SchedTask("c", "w", ("a", "b"))], {"w": 2}, 2)
    assert drain(s) == ["a", "b"]
    s.mark_finished("a", True)
    assert drain(s) == []
    s.mark_finished("b", True)
    assert drain(s) == ["c"]


def test_stop_returns_never_started_and_waits_for_running():
    s = Scheduler([SchedTask(x, "w") for x in "abcd"], {"w": 2}, max_workers=2)
    assert drain(s) == ["a", "b"]
    assert s.stop() == ["c", "d"]
    assert drain(s) == [] and not s.finished
    s.mark_finished("a", True)
    s.mark_finished("b", False)
    assert s.finished


def test_refuses_zero_workers():
    with pytest.raises(ValueError, match="max_workers"):
        Scheduler([], {}, max_workers=0)
