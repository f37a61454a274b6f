"""The runner: executes a plan with durable per-task state (apply, resume, status)."""

from baselinr.runner.outcome import RunStatus, TaskOutcome, TaskStatus
from baselinr.runner.runner import RunOptions, Runner
from baselinr.runner.scheduler import SchedTask, Scheduler
from baselinr.runner.service import apply_plan, open_state, resume_run
from baselinr.runner.state import StateStore
from baselinr.runner.summary import RunSummary

__all__ = ["RunOptions", "RunStatus", "RunSummary", "Runner", "SchedTask", "Scheduler", "StateStore", "TaskOutcome",
           "TaskStatus", "apply_plan", "open_state", "resume_run"]
