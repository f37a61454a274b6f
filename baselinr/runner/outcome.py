"""Typed task states and the outcome a worker returns (the main loop is the only writer of state)."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel, ConfigDict

from baselinr.profiling.result import ProfilingResult


class TaskStatus(StrEnum):
    PENDING = "pending"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    SKIPPED = "skipped"
    CANCELLED = "cancelled"


class RunStatus(StrEnum):
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"            # some task failed, was skipped or cancelled: resumable
    INTERRUPTED = "interrupted"  # Ctrl-C: resumable


# Every task ends in exactly one of these; resume re-runs all but SUCCEEDED.
FINAL_STATUSES = (TaskStatus.SUCCEEDED, TaskStatus.FAILED, TaskStatus.SKIPPED, TaskStatus.CANCELLED,
                  TaskStatus.PENDING)


class TaskOutcome(BaseModel):
    """What executing one task produced. ``result`` is set exactly when ``succeeded``."""

    model_config = ConfigDict(frozen=True, arbitrary_types_allowed=True)

    task_id: str
    succeeded: bool
    attempts: int
    started_at: datetime
    finished_at: datetime
    error_type: str | None = None
    error_message: str | None = None
    result: ProfilingResult | None = None

    @property
    def duration_seconds(self) -> float:
        return (self.finished_at - self.started_at).total_seconds()

    @property
    def status(self) -> TaskStatus:
        return TaskStatus.SUCCEEDED if self.succeeded else TaskStatus.FAILED
