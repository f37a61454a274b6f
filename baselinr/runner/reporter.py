"""All human output of a run, on stderr: live progress (TTY only), resume reasons, final summary."""

from __future__ import annotations

import logging
import sys
import time
from collections import Counter, defaultdict
from typing import TextIO

from baselinr.runner.outcome import RunStatus, TaskStatus
from baselinr.runner.summary import RunSummary
from baselinr.utils.logging import json_logs_enabled

PROGRESS_INTERVAL_S = 0.25
MAX_PROBLEMS_SHOWN = 20
_DONE = (TaskStatus.SUCCEEDED, TaskStatus.FAILED, TaskStatus.SKIPPED, TaskStatus.CANCELLED)


class Reporter:
    """Writes to ``stream`` (stderr by default); progress lines only when it is a terminal."""

    def __init__(self, stream: TextIO | None = None, progress: bool | None = None,
                 interval: float = PROGRESS_INTERVAL_S) -> None:
        self.stream = stream or sys.stderr
        self.interval = interval
        # --log-format json: lines become log records (stderr stays one JSON object per line).
        self.as_log = stream is None and json_logs_enabled()
        self.progress = (self.stream.isatty() if progress is None else progress) and not self.as_log
        self._total = 0
        self._start = time.monotonic()
        self._last = float("-inf")
        self._counts: dict[str, Counter[str]] = defaultdict(Counter)

    def _line(self, text: str) -> None:
        if self.as_log:
            logging.getLogger("baselinr.report").info(text)
            return
        if self.progress:
            self.stream.write("\r\033[K")
        self.stream.write(text + "\n")
        self.stream.flush()

    def note(self, text: str) -> None:
        self._line(text)

    def explain(self, run_id: str, reasons: dict[str, str]) -> None:
        """Say what a resume will re-run and why, one task per line."""
        self._line(f"resuming run {run_id}: {len(reasons)} task(s) to run")
        for task_id, reason in reasons.items():
            self._line(f"  {task_id}: {reason}")

    def run_started(self, run_id: str, total: int, max_workers: int, caps: dict[str, int]) -> None:
        self._total, self._start = total, time.monotonic()
        per = ", ".join(f"{w} {c}" for w, c in sorted(caps.items()))
        self._line(f"run {run_id}: {total} task(s), max_workers={max_workers}, caps: {per}")

    def task_changed(self, warehouse: str, status: TaskStatus, previous: TaskStatus | None = None) -> None:
        """Count a task entering ``status`` (leaving ``previous``) and refresh the progress line."""
        if previous is not None:
            self._counts[warehouse][previous] -= 1
        self._counts[warehouse][status] += 1
        # A start right after a finish must show, or the line says "0 running" for the whole task.
        self._progress(force=status == TaskStatus.RUNNING)

    def task_failed(self, task_id: str, message: str) -> None:
        self._line(f"failed: {task_id}: {message}")

    def interrupted(self, running: int) -> None:
        """The first Ctrl-C: say what happens now, since the run may go on for a long table."""
        self._line(f"interrupted: starting no new task; waiting for {running} running task(s) to finish "
                   "(Ctrl-C again to abort them)")

    def _progress(self, force: bool = False) -> None:
        now = time.monotonic()
        if not self.progress or (now - self._last < self.interval and not force):
            return
        self._last = now
        finished = sum(c[s] for c in self._counts.values() for s in _DONE)
        rate = finished / max(now - self._start, 1e-9)
        eta = f"{(self._total - finished) / rate:.0f}s" if rate > 0 else "?"
        parts = [f"{w}: {c[TaskStatus.SUCCEEDED]} done, {c[TaskStatus.FAILED]} failed, {c[TaskStatus.RUNNING]} running"
                 for w, c in sorted(self._counts.items())]
        self.stream.write(f"\r\033[K{finished}/{self._total} | {' | '.join(parts)} | {rate:.1f}/s | ETA {eta}")
        self.stream.flush()

    def summary(self, summary: RunSummary) -> None:
        """The final table: one line per status with its count, then what to do next."""
        self._line(f"run {summary.run_id} {summary.status} in {summary.duration_seconds:.1f}s")
        width = max(len(s) for s in TaskStatus)
        for status in TaskStatus:
            if summary.counts.get(status):
                self._line(f"  {status:<{width}}  {summary.counts[status]:>6}")
        self._line(f"  {'total':<{width}}  {summary.total:>6}")
        for task_id, message in summary.problems[:MAX_PROBLEMS_SHOWN]:
            self._line(f"  {task_id}: {message}")
        if len(summary.problems) > MAX_PROBLEMS_SHOWN:
            self._line(f"  ... and {len(summary.problems) - MAX_PROBLEMS_SHOWN} more: see `baselinr status {summary.run_id}`")
        if summary.stale:
            self._line(f"{summary.stale} task(s) failed because their table changed since the plan: resume would fail "
                       "them again; re-run `baselinr plan`, review the change and apply the new plan")
        if summary.status != RunStatus.SUCCEEDED:
            self._line(f"run `baselinr resume {summary.run_id}` to re-run what did not succeed")
        elif summary.interrupted:
            self._line("interrupted, but every task had already finished: nothing to resume")


class SilentReporter(Reporter):
    """Discards everything (library use, benchmarks)."""

    def _line(self, text: str) -> None:
        return None

    def _progress(self, force: bool = False) -> None:
        return None
