"""Command-line interface. Commands are thin: open, call one library function, translate errors.

stdout carries only a command's data (plan JSON, status JSON); everything else goes to stderr.
Exit codes: 0 success, 1 some tasks failed (resumable), 2 bad input, 130 interrupted.
"""

from __future__ import annotations

import functools
import sys
from typing import Any, Callable

import click

from baselinr import __version__
from baselinr.errors import BaselinrError


def handle_errors(func: Callable[..., Any]) -> Callable[..., Any]:
    """Turn a ``BaselinrError`` into one line on stderr and its exit code (never a traceback)."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except BaselinrError as exc:
            click.echo(f"error: {exc}", err=True)
            sys.exit(exc.exit_code)

    return wrapper


def run_options(func: Callable[..., Any]) -> Callable[..., Any]:
    """Options shared by commands that execute work (apply, resume, profile): logging and metrics."""
    func = click.option("--metrics-file", type=click.Path(dir_okay=False),
                        help="Write Prometheus text metrics here when the run ends.")(func)
    func = click.option("--log-level", type=click.Choice(["debug", "info", "warning", "error"]), default="info",
                        show_default=True)(func)
    func = click.option("--log-format", type=click.Choice(["text", "json"]), default="text", show_default=True,
                        help="json: one JSON object per line on stderr.")(func)
    return func


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="baselinr")
def main() -> None:
    """Profile SQL warehouse tables from a reviewable, resumable execution plan."""


if __name__ == "__main__":
    main()
