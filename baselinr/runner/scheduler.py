"""Which task may start next: DAG readiness, per-warehouse caps and a global worker limit.

Pure bookkeeping (no threads, no I/O), like ninja's ``Plan``: the runner asks ``next_ready()``
while it has a free worker and reports each end with ``mark_finished``. Each warehouse has its
own ready queue, so a warehouse at its cap never blocks another warehouse's ready work; within
a warehouse, tasks start in plan order (the planner puts the largest tables first).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass


@dataclass(frozen=True)
class SchedTask:
    """What the scheduler needs to know about a task."""

    id: str
    warehouse: str
    depends_on: tuple[str, ...] = ()


class Scheduler:
    """Tracks wanted / ready / running / finished tasks.

    ``done`` tasks (already succeeded, e.g. on resume) satisfy dependencies and never run.
    Dependencies outside ``tasks`` and ``done`` are treated as satisfied (validated by the runner).
    """

    def __init__(self, tasks: list[SchedTask], caps: dict[str, int], max_workers: int,
                 done: set[str] | frozenset[str] = frozenset()) -> None:
        if max_workers < 1:
            raise ValueError("max_workers must be at least 1")
        self._order = {t.id: i for i, t in enumerate(tasks)}
        self._tasks = {t.id: t for t in tasks}
        self._caps = {w: max(1, min(caps.get(w, max_workers), max_workers)) for w in {t.warehouse for t in tasks}}
        self._max_workers = max_workers
        self._waiting: dict[str, set[str]] = {
            t.id: {d for d in t.depends_on if d in self._tasks and d not in done} for t in tasks}
        self._dependents: dict[str, list[str]] = {t.id: [] for t in tasks}
        for t in tasks:
            for dep in self._waiting[t.id]:
                self._dependents[dep].append(t.id)
        self._ready: dict[str, deque[str]] = {w: deque() for w in self._caps}
        self._running: dict[str, int] = {w: 0 for w in self._caps}
        self._unfinished = set(self._tasks)
        self._started: set[str] = set()
        self._stopped = False
        for t in tasks:
            if not self._waiting[t.id]:
                self._ready[t.warehouse].append(t.id)

    @property
    def caps(self) -> dict[str, int]:
        """Effective cap per warehouse (never above max_workers)."""
        return dict(self._caps)

    def running(self, warehouse: str | None = None) -> int:
        return sum(self._running.values()) if warehouse is None else self._running[warehouse]

    def queued(self, warehouse: str) -> int:
        """Ready tasks of a warehouse waiting for a worker."""
        return len(self._ready[warehouse])

    def next_ready(self) -> str | None:
        """The next task that may start now (and count it running), or None.

        Among warehouses below their cap, picks the ready task earliest in plan order.
        """
        if self._stopped or self.running() >= self._max_workers:
            return None
        heads = [q[0] for w, q in self._ready.items() if q and self._running[w] < self._caps[w]]
        if not heads:
            return None
        task_id = min(heads, key=self._order.__getitem__)
        warehouse = self._tasks[task_id].warehouse
        self._ready[warehouse].popleft()
        self._running[warehouse] += 1
        self._started.add(task_id)
        return task_id

    def mark_finished(self, task_id: str, succeeded: bool) -> list[tuple[str, str]]:
        """Record a running task's end. Returns ``(skipped_task, failed_dependency)`` pairs: on
        failure every transitive dependent is skipped, naming the dependency that failed."""
        self._running[self._tasks[task_id].warehouse] -= 1
        self._started.discard(task_id)
        self._unfinished.discard(task_id)
        if succeeded:
            for dep_id in sorted(self._dependents[task_id], key=self._order.__getitem__):
                waiting = self._waiting[dep_id]
                waiting.discard(task_id)
                if not waiting and dep_id in self._unfinished:
                    self._ready[self._tasks[dep_id].warehouse].append(dep_id)
            return []
        skipped: list[tuple[str, str]] = []
        stack = [task_id]
        while stack:
            for dep_id in self._dependents[stack.pop()]:
                if dep_id in self._unfinished:
                    self._unfinished.discard(dep_id)
                    skipped.append((dep_id, task_id))
                    stack.append(dep_id)
        return sorted(skipped, key=lambda pair: self._order[pair[0]])

    def stop(self) -> list[str]:
        """Start nothing more (fail-fast, Ctrl-C); returns the tasks that will never start."""
        self._stopped = True
        not_started = [t for t in self._unfinished if t not in self._started]
        self._unfinished.difference_update(not_started)
        for q in self._ready.values():
            q.clear()
        return sorted(not_started, key=self._order.__getitem__)

    @property
    def finished(self) -> bool:
        """True when no task is running and none can start."""
        return not self._unfinished
