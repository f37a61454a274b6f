"""Reporter: progress only on a terminal, a summary whose counts add up, and what to do next."""

from __future__ import annotations

import io

from baselinr.runner.outcome import RunStatus, TaskStatus
from baselinr.runner.reporter import Reporter
from baselinr.runner.summary import RunSummary


class Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_shows_per_warehouse_counts_rate_and_eta_on_a_terminal():
    out = Tty()
    reporter = Reporter(out, interval=0)
    reporter.run_started("r1", 4, 2, {"pg": 2})
    reporter.task_changed("pg", TaskStatus.RUNNING, TaskStatus.PENDING)
    reporter.task_changed("pg", TaskStatus.SUCCEEDED, TaskStatus.RUNNING)
    line = out.getvalue().rsplit("\r\033[K", 1)[-1]
    assert line.startswith("1/4 | pg: 1 done, 0 failed, 0 running | ")
    assert "/s | ETA " in line


def test_no_progress_when_not_a_terminal_but_summary_always():
    out = io.StringIO()
    reporter = Reporter(out)
    reporter.run_started("r1", 3, 1, {"pg": 1, "lite": 1})
    reporter.task_changed("pg", TaskStatus.RUNNING, TaskStatus.PENDING)
    summary = RunSummary(run_id="r1", status=RunStatus.FAILED, duration_seconds=1.25, total=3,
                         counts={TaskStatus.SUCCEEDED: 1, TaskStatus.FAILED: 1, TaskStatus.SKIPPED: 1},
                         problems=(("pg.public.a", "failed: boom"), ("pg.public.b", "skipped: upstream pg.public.a failed")))
    reporter.summary(summary)
    assert out.getvalue() == (
        "run r1: 3 task(s), max_workers=1, caps: lite 1, pg 1\n"
        "run r1 failed in 1.2s\n"
        "  succeeded       1\n"
        "  failed          1\n"
        "  skipped         1\n"
        "  total           3\n"
        "  pg.public.a: failed: boom\n"
        "  pg.public.b: skipped: upstream pg.public.a failed\n"
        "run `baselinr resume r1` to re-run what did not succeed\n")
    assert summary.exit_code == 1


def test_ctrl_c_after_the_last_task_started_exits_130_with_nothing_to_resume():
    out = io.StringIO()
    summary = RunSummary(run_id="r1", status=RunStatus.SUCCEEDED, duration_seconds=2.0, total=2,
                         counts={TaskStatus.SUCCEEDED: 2}, interrupted=True)
    Reporter(out).summary(summary)
    assert out.getvalue().splitlines()[-1] == "interrupted, but every task had already finished: nothing to resume"
    assert "baselinr resume" not in out.getvalue()
    assert summary.exit_code == 130


def test_a_task_starting_right_after_another_finished_is_drawn_despite_the_throttle():
    out = Tty()
    reporter = Reporter(out, interval=3600)  # only the first change would be drawn, if starts were throttled
    reporter.run_started("r1", 2, 1, {"pg": 1})
    reporter.task_changed("pg", TaskStatus.RUNNING, TaskStatus.PENDING)
    reporter.task_changed("pg", TaskStatus.SUCCEEDED, TaskStatus.RUNNING)
    reporter.task_changed("pg", TaskStatus.RUNNING, TaskStatus.PENDING)
    assert out.getvalue().rsplit("\r\033[K", 1)[-1].startswith("1/2 | pg: 1 done, 0 failed, 1 running | ")
