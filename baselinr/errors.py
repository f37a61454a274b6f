"""The project's exception hierarchy.

Exit codes (documented once, used by the CLI):
  0  success
  1  some tasks failed or were skipped (the run is resumable)
  2  bad input: config, plan or usage (``BaselinrError`` subclasses below except TaskError)
  130 interrupted by Ctrl-C (state recorded; ``baselinr resume`` continues)
"""


class BaselinrError(Exception):
    """Base of every error Baselinr raises on purpose; its message is one user-facing line."""

    exit_code = 2


class ConfigError(BaselinrError):
    """The config file is missing, unreadable or invalid."""


class PlanError(BaselinrError):
    """A plan cannot be compiled, loaded or trusted (tampered, unknown version, cycle...)."""


class WarehouseConnectionError(BaselinrError):
    """A warehouse or the storage database cannot be reached or its driver is missing."""


class StateError(BaselinrError):
    """The run state says no: unknown run id, run held by another runner, nothing to resume."""


class LeaseLostError(StateError):
    """This runner's lease on its run was taken over; it must stop writing state."""


class TaskError(BaselinrError):
    """Profiling one table failed. ``transient`` errors are worth retrying."""

    exit_code = 1

    def __init__(self, message: str, *, transient: bool = False, error_type: str | None = None):
        super().__init__(message)
        self.transient = transient
        self.error_type = error_type or type(self).__name__


class StalePlanError(TaskError):
    """The table changed (gone, or columns differ) since the plan was compiled."""
