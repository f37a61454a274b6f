"""Batch start/completion events. Batches are reporting units only: the runner never waits at a
batch boundary (a barrier would leave workers idle), so a batch starts with its first task and
completes when its last task reaches a final state. A batch none of whose tasks ever started
(all skipped or cancelled) emits neither event."""

from __future__ import annotations

import time
from collections import Counter

from baselinr.events import bus as ev
from baselinr.events.bus import EventBus
from baselinr.runner.outcome import TaskStatus
from planner.models import Plan


class BatchTracker:
    """Emits BATCH_STARTED / BATCH_COMPLETED for the batches holding tasks of this execution."""

    def __init__(self, plan: Plan, task_ids: set[str], max_workers: int, event_bus: EventBus) -> None:
        self.bus, self.max_workers = event_bus, max_workers
        self._batch_of: dict[str, str] = {}
        self._left: dict[str, int] = {}
        self._size: dict[str, int] = {}
        self._warehouse: dict[str, str] = {}
        self._started: dict[str, float] = {}
        self._ended: dict[str, Counter[TaskStatus]] = {}
        for batch in plan.batches:
            mine = [t for t in batch.tasks if t in task_ids]
            if mine:
                self._batch_of.update((t, batch.id) for t in mine)
                self._size[batch.id] = self._left[batch.id] = len(mine)
                self._warehouse[batch.id] = batch.warehouse
                self._ended[batch.id] = Counter()

    def started(self, task_id: str) -> None:
        batch = self._batch_of.get(task_id)
        if batch is not None and batch not in self._started:
            self._started[batch] = time.monotonic()
            self.bus.emit(ev.BATCH_STARTED, batch_id=batch, batch_size=self._size[batch],
                          max_workers=self.max_workers, warehouse=self._warehouse[batch])

    def finished(self, task_id: str, status: TaskStatus) -> None:
        """A task reached a final state: succeeded, failed, skipped or cancelled."""
        batch = self._batch_of.get(task_id)
        if batch is None:
            return
        self._left[batch] -= 1
        ended = self._ended[batch]
        ended[status] += 1
        began = self._started.get(batch)
        if self._left[batch] == 0 and began is not None:
            self.bus.emit(ev.BATCH_COMPLETED, batch_id=batch, batch_size=self._size[batch],
                          successful=ended[TaskStatus.SUCCEEDED], failed=ended[TaskStatus.FAILED],
                          skipped=ended[TaskStatus.SKIPPED], cancelled=ended[TaskStatus.CANCELLED],
                          duration_seconds=time.monotonic() - began, warehouse=self._warehouse[batch])
