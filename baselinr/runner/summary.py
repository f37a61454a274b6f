"""The result of a run as the CLI and library callers see it."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

from baselinr.runner.outcome import RunStatus, TaskStatus

EXIT_OK, EXIT_TASKS_FAILED, EXIT_INTERRUPTED = 0, 1, 130


class RunSummary(BaseModel):
    """Counts per final task status; they add up to ``total`` (the plan's task count)."""

    model_config = ConfigDict(frozen=True)

    run_id: str
    status: RunStatus
    counts: dict[TaskStatus, int]
    total: int
    duration_seconds: float
    problems: tuple[tuple[str, str], ...] = ()
    interrupted: bool = False  # Ctrl-C: exit 130 even when the tasks that were running all finished
    stale: int = 0  # tasks failed because their table changed since the plan: resume cannot fix them

    @property
    def exit_code(self) -> int:
        if self.interrupted:
            return EXIT_INTERRUPTED
        return EXIT_OK if self.status == RunStatus.SUCCEEDED else EXIT_TASKS_FAILED
