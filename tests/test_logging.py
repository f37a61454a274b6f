"""Structured logging: JSON lines and text on stderr, run context attached, secrets scrubbed."""

from __future__ import annotations

import json
import logging

import pytest

from baselinr.utils.logging import RunContext, configure_logging, log_event, scrub, scrub_text


class Stderr:
    """What Baselinr's logging wrote to ``sys.stderr`` (the handler looks the stream up per write)."""

    def __init__(self, capsys: pytest.CaptureFixture[str]) -> None:
        self._capsys = capsys
        self._text = ""

    def getvalue(self) -> str:
        self._text += self._capsys.readouterr().err
        return self._text


@pytest.fixture
def stderr(capsys: pytest.CaptureFixture[str]) -> Stderr:
    return Stderr(capsys)


def json_lines(buf: Stderr) -> list[dict]:
    return [json.loads(line) for line in buf.getvalue().splitlines()]


def test_json_line_has_event_context_and_metadata(stderr: Stderr) -> None:
    configure_logging("json", "debug")
    ctx = RunContext(run_id="r-1", environment="prod", command="apply").for_task("wh.main.flights", 2)
    log_event(logging.getLogger("baselinr.test"), "worker_completed", "done", level="info",
              metadata={"worker_id": "w-3", "duration_seconds": 1.5, "success": True}, context=ctx)
    [line] = json_lines(stderr)
    assert line["level"] == "info"
    assert line["event_type"] == "worker_completed"
    assert line["message"] == "done"
    assert (line["run_id"], line["environment"], line["command"], line["task_id"], line["attempt"]) == \
        ("r-1", "prod", "apply", "wh.main.flights", 2)
    assert line["metadata"] == {"worker_id": "w-3", "duration_seconds": 1.5, "success": True}
    assert line["timestamp"].endswith("+00:00")


def test_plain_records_have_the_same_keys(stderr: Stderr) -> None:
    configure_logging("json", "info")
    logging.getLogger("baselinr.other").warning("plain %s", "record")
    [line] = json_lines(stderr)
    assert line["message"] == "plain record"
    assert line["event_type"] is None and line["run_id"] is None and line["metadata"] == {}
    assert {"timestamp", "level", "task_id", "attempt", "environment", "command"} <= set(line)


def test_level_filters_and_reconfiguring_replaces_the_handler(stderr: Stderr) -> None:
    log = logging.getLogger("baselinr.test")
    configure_logging("json", "info")
    configure_logging("json", "info")  # idempotent: still one line per record
    log_event(log, "worker_started", "hidden at info", level="debug")
    log_event(log, "worker_failed", "shown", level="error")
    assert [line["event_type"] for line in json_lines(stderr)] == ["worker_failed"]


def test_text_format_is_one_readable_line(stderr: Stderr) -> None:
    configure_logging("text", "info")
    log_event(logging.getLogger("baselinr.test"), "profiling_failed", "profiling main.t failed", level="error",
              metadata={"table": "main.t", "error_type": "OperationalError", "error": "lost connection"},
              context=RunContext(run_id="r").for_task("main.t", 3), shown=("error",))
    [line] = stderr.getvalue().splitlines()
    assert "ERROR" in line and "profiling main.t failed" in line
    assert "[attempt 3]" in line and "error_type=OperationalError" in line
    assert "lost connection" not in line  # ``shown`` keys are not repeated


def test_a_name_with_a_newline_cannot_split_or_forge_a_text_record(stderr: Stderr) -> None:
    configure_logging("text", "info")
    forged = "t\n12:00:00 ERROR   run r succeeded\tx"
    log_event(logging.getLogger("baselinr.test"), "profiling_failed", f"profiling main.{forged} failed",
              level="error", metadata={"table": f"main.{forged}"})
    [line] = stderr.getvalue().splitlines()
    assert line.endswith("ERROR   profiling main.t\\n12:00:00 ERROR   run r succeeded\\tx failed")


def test_secrets_never_reach_the_stream(stderr: Stderr) -> None:
    configure_logging("json", "info")
    log_event(logging.getLogger("baselinr.test"), "worker_failed", "cannot reach postgresql://bob:hunter2@db/x",
              metadata={"password": "hunter2", "api_key": "k-123", "nested": {"token": "t-9"},
                        "error": "connection to server failed: host=db password=hunter2 user=bob"})
    text = stderr.getvalue()
    assert "hunter2" not in text and "k-123" not in text and "t-9" not in text
    [line] = json_lines(stderr)
    assert line["message"] == "cannot reach postgresql://bob:***@db/x"
    assert line["metadata"]["password"] == "***" and line["metadata"]["nested"] == {"token": "***"}


def test_scrub_keeps_harmless_values() -> None:
    data = {"table": "main.flights", "row_count": 336776, "items": ["a", "sqlite:///x.db"], "key": None}
    assert scrub(data) == data
    assert scrub_text("mysql+pymysql://u:p%40ss@h:3306/db?x=1") == "mysql+pymysql://u:***@h:3306/db?x=1"


def test_unknown_format_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown log format 'xml'"):
        configure_logging("xml", "info")  # type: ignore[arg-type]
