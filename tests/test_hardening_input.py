"""Bad input through the real CLI: one line on stderr, exit 2, nothing on stdout, nothing stored.

The library-level messages are pinned in test_config.py and test_plan_io.py; here each reaches
the user through `baselinr plan -c`, `baselinr profile -c`, `baselinr apply`, `resume`, `status`.
"""

from __future__ import annotations

import json
import os
import re
import sqlite3
import subprocess
import sys
from importlib.metadata import entry_points
from pathlib import Path

import pytest
from click.testing import CliRunner

import planner
from baselinr.cli import main
from tests.pgserver import free_port
from tests.test_hardening_fixtures import only_run_id, run_count, task_states
from tests.test_plan_io import resealed
from tests.test_runner_fixtures import compile_plan, config_data, make_config, pg_exec, write_config


CPUS = os.cpu_count() or 1


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A tiny SQLite warehouse (tables a, b) in ``tmp_path``; storage would go to ``store.db``."""
    with sqlite3.connect(tmp_path / "wh.db") as raw:
        raw.execute("CREATE TABLE a (id INTEGER, v TEXT)")
        raw.execute("CREATE TABLE b (id INTEGER)")
        raw.execute("INSERT INTO a VALUES (1, 'x'), (2, NULL)")
    return tmp_path


def base(project: Path) -> dict:
    return config_data(project, {"wh": {"type": "sqlite", "filepath": str(project / "wh.db")}}, [{"pattern": "*"}])


def refused(*args: str, message: str, store: Path) -> None:
    """The command exits 2 with exactly ``error: ...<message>`` on stderr and stores no run."""
    result = CliRunner().invoke(main, list(args))
    assert (result.exit_code, result.stdout) == (2, ""), result.output
    assert result.stderr.startswith("error: ") and result.stderr.count("\n") == 1, result.stderr
    assert result.stderr.rstrip("\n").endswith(message), result.stderr
    assert run_count(store) == 0


def edit(data: dict, section: str, **values: object) -> dict:
    data[section] = {**data.get(section, {}), **values}
    return data


NO_WAREHOUSE = ("profiling.tables: no warehouse to read the tables from; add 'source:' (one warehouse) "
                "or 'sources:' (several, by name)")

CONFIG_CASES = {
    "wrong type": (lambda d: edit(d, "execution", max_workers="many"),
                   "execution.max_workers: Input should be a valid integer, unable to parse string as an integer"),
    "unknown key": (lambda d: edit(d, "storage", conection={}),
                    "storage.conection: unknown key 'conection' (did you mean 'connection'?)"),
    "unknown warehouse type": (lambda d: d["sources"]["wh"].update(type="oracle", host="h") or d,
                               "sources.wh.type: Input should be 'postgres', 'sqlite', 'mysql', 'duckdb', "
                               "'snowflake', 'bigquery' or 'redshift', got 'oracle'"),
    "unset variable": (lambda d: d["sources"]["wh"].update(filepath="${HARDENING_UNSET_VAR}") or d,
                       "sources.wh.filepath: environment variable HARDENING_UNSET_VAR is not set "
                       "(export it, or write ${HARDENING_UNSET_VAR:-default})"),
    "max_workers 0": (lambda d: edit(d, "execution", max_workers=0),
                      "execution.max_workers: Input should be greater than or equal to 1"),
    "max_workers 65": (lambda d: edit(d, "execution", max_workers=65),
                       "execution.max_workers: Input should be less than or equal to 64"),
    "max_workers above 4 x CPUs": (lambda d: edit(d, "execution", max_workers=4 * CPUS + 1),
                                   f"execution.max_workers: max_workers {4 * CPUS + 1} exceeds 4 x CPU count "
                                   f"({4 * CPUS} on this machine with {CPUS} CPUs)"),
    "batch_size 0": (lambda d: edit(d, "execution", batch_size=0),
                     "execution.batch_size: Input should be greater than or equal to 1"),
    "queue_size 5": (lambda d: edit(d, "execution", queue_size=5),
                     "execution.queue_size: Input should be greater than or equal to 10"),
    "selection names a missing source": (lambda d: d["profiling"]["tables"][0].update(source="nope") or d,
                                         "profiling.tables[0].source: unknown source 'nope'; defined: wh"),
    "invalid regex": (lambda d: d["profiling"]["tables"][0].update(pattern="a(", pattern_type="regex") or d,
                      "profiling.tables[0].pattern: invalid regex 'a(': missing ), unterminated subpattern "
                      "at position 1"),
    "max_workers true": (lambda d: edit(d, "execution", max_workers=True),
                         "execution.max_workers: expected a number, got true"),
    "limit for an unknown warehouse": (lambda d: edit(d, "execution", warehouse_limits={"nonexistent": 3}),
                                       "execution.warehouse_limits: 'nonexistent' is neither a warehouse of this "
                                       "config (wh) nor a warehouse type (postgres, sqlite, mysql, duckdb, "
                                       "snowflake, bigquery, redshift)"),
    "port out of range": (lambda d: d["sources"].update(pg={"type": "postgres", "host": "h", "port": 99999}) or d,
                          "sources.pg.port: Input should be less than or equal to 65535"),
    "empty sources": (lambda d: d.update(sources={}) or d, NO_WAREHOUSE),
    "empty source": (lambda d: d.update(source=d.pop("sources") and None) or d, NO_WAREHOUSE),
    "no source key": (lambda d: d.pop("sources") and d, NO_WAREHOUSE),
    "invalid exclude regex": (lambda d: d["profiling"]["tables"][0].update(pattern=".*", pattern_type="regex",
                                                                           exclude_patterns=["ok", "b["]) or d,
                              "profiling.tables[0].exclude_patterns: invalid regex 'b[': unterminated character set "
                              "at position 1"),
}


@pytest.mark.parametrize("command", ["plan", "profile"])
@pytest.mark.parametrize("case", CONFIG_CASES)
def test_bad_config_through_plan_and_profile(project: Path, monkeypatch, command: str, case: str) -> None:
    monkeypatch.delenv("HARDENING_UNSET_VAR", raising=False)
    change, message = CONFIG_CASES[case]
    cfg = write_config(project, change(base(project)))
    refused(command, "-c", str(cfg), message=f"{cfg}: {message}", store=project / "store.db")
    assert not (project / "store.db").exists()


@pytest.mark.parametrize("command", ["plan", "profile"])
def test_missing_and_unparsable_config_files(project: Path, command: str) -> None:
    refused(command, "-c", str(project / "nope.yml"), message=f"{project / 'nope.yml'}: config file not found",
            store=project / "store.db")
    bad = project / "bad.yml"
    bad.write_text("source:\n  type: sqlite\n  filepath: [wh.db\nprofiling: {}\n", encoding="utf-8")
    refused(command, "-c", str(bad), message=f"{bad}: invalid YAML at line 4, column 10: expected ',' or ']', but got ':'",
            store=project / "store.db")
    binary = project / "g.yml"
    binary.write_bytes(bytes(range(256)) * 8)  # like `head -c 2000 /dev/urandom`
    refused(command, "-c", str(binary), message=f"{binary}: not a config: the file is not UTF-8 text",
            store=project / "store.db")
    assert not (project / "store.db").exists()


REPLAN = "re-run baselinr plan"


def _cycle(data: dict) -> None:
    by_table = {t["table"]: t for t in data["tasks"]}
    by_table["a"]["depends_on"], by_table["b"]["depends_on"] = ["wh.main.b"], ["wh.main.a"]


PLAN_CASES = {
    "not JSON": (lambda text: "tasks:\n  - a\n", "not a plan: invalid JSON at line 1, column 1: Expecting value"),
    "truncated": (lambda text: text[:len(text) // 2], None),
    "digest mismatch": (lambda text: text.replace('"histogram_bins": 10', '"histogram_bins": 11', 1),
                        f"digest mismatch: the task was edited after compilation; {REPLAN}"),
    "unknown format_version": (lambda text: json.dumps({**json.loads(text), "format_version": 7}),
                               f"unknown plan format_version 7; this baselinr reads format version(s) 1; {REPLAN}"),
    "unknown warehouse": (lambda text: resealed(text, lambda d: d["warehouses"].update(other=d["warehouses"].pop("wh"))),
                          f"task wh.main.a: unknown warehouse 'wh' (the plan defines other); {REPLAN}"),
    "duplicate task ids": (lambda text: resealed(text, lambda d: d["tasks"].append(dict(d["tasks"][0]))),
                           f"duplicate task id wh.main.a; {REPLAN}"),
    "dependency cycle": (lambda text: resealed(text, _cycle),
                         "dependency cycle: wh.main.a -> wh.main.b -> wh.main.a (each task depends on the next)"),
}


@pytest.mark.parametrize("case", PLAN_CASES)
def test_bad_plan_through_apply(project: Path, case: str) -> None:
    data = base(project)
    cfg = write_config(project, data)
    text = planner.dumps_plan(compile_plan(make_config(data)))
    change, message = PLAN_CASES[case]
    bad = change(text)
    if message is None:  # truncated: the line where the JSON ends
        message = f"the plan is truncated (the JSON ends early at line {bad.count(chr(10)) + 1}); {REPLAN}"
    (project / "plan.json").write_text(bad, encoding="utf-8")
    refused("apply", str(project / "plan.json"), "-c", str(cfg), message=message, store=project / "store.db")


def test_unknown_run_id_for_resume_and_status(project: Path) -> None:
    data = base(project)
    cfg = write_config(project, data)
    (project / "plan.json").write_text(planner.dumps_plan(compile_plan(make_config(data))), encoding="utf-8")
    assert CliRunner().invoke(main, ["apply", str(project / "plan.json"), "-c", str(cfg)]).exit_code == 0
    message = "unknown run id 'no-such-run' (see `baselinr status` for the runs recorded)"
    for command in ("resume", "status"):
        result = CliRunner().invoke(main, [command, "no-such-run", "-c", str(cfg)])
        assert (result.exit_code, result.stdout, result.stderr) == (2, "", f"error: {message}\n")
    assert run_count(project / "store.db") == 1  # only the real run


def test_apply_with_an_unreachable_warehouse_fails_its_tasks_and_runs_the_others(project: Path, pg_db: dict,
                                                                                 monkeypatch) -> None:
    pg_exec(pg_db, "CREATE TABLE p1 AS SELECT 1 AS id", "CREATE TABLE p2 AS SELECT 2 AS id")
    # The port is a ${VAR} in config and plan alike (a config that names another port is refused):
    # the server moved away between plan and apply.
    monkeypatch.setenv("HARDENING_PG_PORT", str(pg_db["port"]))
    data = config_data(project, {"wh": {"type": "sqlite", "filepath": str(project / "wh.db")},
                                 "pg": {**pg_db, "port": "${HARDENING_PG_PORT}"}},
                       [{"pattern": "*", "source": "wh"}, {"pattern": "p*", "source": "pg"}])
    (project / "plan.json").write_text(planner.dumps_plan(compile_plan(make_config(data))), encoding="utf-8")
    port = free_port()  # nothing listens there: connection refused
    monkeypatch.setenv("HARDENING_PG_PORT", str(port))
    cfg = write_config(project, data)
    result = CliRunner().invoke(main, ["apply", str(project / "plan.json"), "-c", str(cfg)])
    assert (result.exit_code, result.stdout) == (1, ""), result.output
    config = make_config(data)
    states = task_states(config, only_run_id(config))
    assert states["wh.main.a"] == states["wh.main.b"] == ("succeeded", None)
    for task in ("pg.public.p1", "pg.public.p2"):
        status, error = states[task]
        assert status == "failed" and "Connection refused" in error and str(port) in error
        assert f"{task}: {error}" in result.stderr.replace("  ", " ")
    assert "Traceback" not in result.stderr


USAGE_CASES = {
    "max_workers above 4 x CPUs": (["apply", "plan.json", "--max-workers", str(4 * CPUS + 1)],
                                   f"error: Invalid value for '--max-workers': max_workers {4 * CPUS + 1} exceeds "
                                   f"4 x CPU count ({4 * CPUS} on this machine with {CPUS} CPUs) "
                                   "(see 'main apply --help')"),
    "max_workers 0": (["profile", "-c", "config.yml", "--max-workers", "0"],
                      "error: Invalid value for '--max-workers': 0 is not in the range 1<=x<=64 "
                      "(see 'main profile --help')"),
    "malformed cap": (["apply", "plan.json", "--cap", "wh"],
                      "error: Invalid value for '--cap': 'wh': expected WAREHOUSE=N with N at least 1 "
                      "(see 'main apply --help')"),
    "cap with a non-ASCII digit": (["apply", "plan.json", "--cap", "wh=\u0663"],
                                   "error: Invalid value for '--cap': 'wh=\u0663': expected WAREHOUSE=N with N at least 1 "
                                   "(see 'main apply --help')"),
    "empty metrics file": (["apply", "plan.json", "--metrics-file", ""],
                           "error: Invalid value for '--metrics-file': an empty path; give a file path such as "
                           "baselinr.prom (see 'main apply --help')"),
    "unknown command": (["aply", "plan.json"], "error: No such command 'aply'. Did you mean 'apply'? (see 'main --help')"),
    "missing argument": (["diff", "old.json"], "error: Missing argument 'NEW_PATH' (see 'main diff --help')"),
}


@pytest.mark.parametrize("case", USAGE_CASES)
def test_usage_errors_are_one_line_and_exit_2(project: Path, case: str) -> None:
    args, message = USAGE_CASES[case]
    result = CliRunner().invoke(main, args)
    assert (result.exit_code, result.stdout, result.stderr) == (2, "", message + "\n")


JSON_USAGE_CASES = {
    "bad cap": (["apply", "plan.json", "--log-format", "json", "--cap", "wh"],
                "error: Invalid value for '--cap': 'wh': expected WAREHOUSE=N with N at least 1 "
                "(see 'main apply --help')"),
    "bad max-workers": (["resume", "--max-workers", "0", "--log-format=json"],
                        "error: Invalid value for '--max-workers': 0 is not in the range 1<=x<=64 "
                        "(see 'main resume --help')"),
    "unknown option": (["profile", "--log-format", "json", "-c", "config.yml", "--bogus"],
                       "error: No such option '--bogus' (see 'main profile --help')"),
}


@pytest.mark.parametrize("case", JSON_USAGE_CASES)
def test_usage_errors_are_json_records_under_log_format_json(project: Path, case: str) -> None:
    args, message = JSON_USAGE_CASES[case]
    result = CliRunner().invoke(main, args)
    assert (result.exit_code, result.stdout) == (2, ""), result.output
    [line] = result.stderr.splitlines()
    record = json.loads(line)
    assert (record["level"], record["logger"], record["message"]) == ("error", "baselinr.cli", message)


@pytest.mark.parametrize("command", ["apply", "profile"])
def test_json_log_records_name_the_command_that_ran(project: Path, command: str) -> None:
    cfg = write_config(project, base(project))
    (project / "plan.json").write_text(planner.dumps_plan(compile_plan(make_config(base(project)))), encoding="utf-8")
    args = ["apply", str(project / "plan.json"), "-c", str(cfg)] if command == "apply" else ["profile", "-c", str(cfg)]
    result = CliRunner().invoke(main, [*args, "--log-format", "json"])
    assert result.exit_code == 0, result.stderr
    records = [json.loads(line) for line in result.stderr.splitlines()]
    assert {r["command"] for r in records if r["logger"] == "baselinr.events.log"} == {command}


@pytest.mark.parametrize("command", ["apply", "profile"])
def test_a_metrics_file_that_cannot_be_written_is_refused_as_the_docs_say(project: Path, command: str) -> None:
    cfg = write_config(project, base(project))
    (project / "plan.json").write_text(planner.dumps_plan(compile_plan(make_config(base(project)))), encoding="utf-8")
    args = ["apply", str(project / "plan.json"), "-c", str(cfg)] if command == "apply" else ["profile", "-c", str(cfg)]
    refused(*args, "--metrics-file", str(project), store=project / "store.db",
            message=f"--metrics-file: {project} is a directory; give a file path such as {project / 'baselinr.prom'}")
    refused(*args, "--metrics-file", str(cfg / "m.prom"), store=project / "store.db",
            message=f"--metrics-file: {cfg} is a file, not a directory")
    refused("apply", str(project / "nope.json"), "--metrics-file", str(cfg / "m.prom"), store=project / "store.db",
            message=f"--metrics-file: {cfg} is a file, not a directory")  # checked before the plan is read
    result = CliRunner().invoke(main, [*args, "--log-format", "json", "--metrics-file", str(project)])
    assert (result.exit_code, result.stdout) == (2, ""), result.output
    [line] = result.stderr.splitlines()
    assert json.loads(line)["message"] == (f"error: --metrics-file: {project} is a directory; give a file path "
                                           f"such as {project / 'baselinr.prom'}")


def test_a_plan_with_no_tasks_applies_nothing_and_says_why(project: Path) -> None:
    data = config_data(project, {"wh": {"type": "sqlite", "filepath": str(project / "wh.db")}}, [{"pattern": "zzz*"}])
    cfg = write_config(project, data)
    (project / "plan.json").write_text(planner.dumps_plan(compile_plan(make_config(data))), encoding="utf-8")
    said = ("nothing to apply: the plan has no tasks\n"
            "warning: profiling.tables[0]: pattern 'zzz*' (glob) in main matched no table in warehouse 'wh'\n")
    for args in (["apply", str(project / "plan.json"), "-c", str(cfg)], ["profile", "-c", str(cfg)]):
        result = CliRunner().invoke(main, args)
        assert (result.exit_code, result.stdout, result.stderr) == (0, "", said)
    assert run_count(project / "store.db") == 0


def test_profile_prints_the_plans_warnings_before_running(project: Path) -> None:
    data = config_data(project, {"wh": {"type": "sqlite", "filepath": str(project / "wh.db")}},
                       [{"table": "a"}, {"pattern": "zzz*"}])
    result = CliRunner().invoke(main, ["profile", "-c", str(write_config(project, data))])
    assert result.exit_code == 0, result.stderr
    assert result.stderr.splitlines()[0] == ("warning: profiling.tables[1]: pattern 'zzz*' (glob) in main matched no "
                                             "table in warehouse 'wh'")


def test_metrics_that_overflow_are_stored_with_their_reason_and_named_in_a_warning(project: Path) -> None:
    with sqlite3.connect(project / "wh.db") as raw:  # the sample stddev, 1.7e308, needs sums beyond float
        raw.execute("CREATE TABLE huge (x REAL)")
        raw.executemany("INSERT INTO huge VALUES (?)", [(1.7e308,), (-1.7e308,), (0.0,)])
    data = config_data(project, {"wh": {"type": "sqlite", "filepath": str(project / "wh.db")}}, [{"table": "huge"}])
    data["profiling"] = {"tables": [{"table": "huge"}], "metrics": ["count", "min", "max", "stddev", "histogram"]}
    result = CliRunner().invoke(main, ["profile", "-c", str(write_config(project, data))])
    assert result.exit_code == 0, result.stderr  # the table succeeds with what could be computed
    assert ("wh.main.huge: 2 metric(s) could not be computed: x.stddev: stddev is not a finite number (inf): the "
            "values overflow; x.histogram: range -1.7e+308..1.7e+308 is too wide for float edges") in result.stderr
    with sqlite3.connect(project / "store.db") as raw:
        rows = dict((m, (v, e)) for m, v, e in raw.execute("SELECT metric_name, metric_value, error FROM baselinr_results"))
    assert rows == {"count": ("3", None), "min": ("-1.7e+308", None), "max": ("1.7e+308", None),
                    "stddev": (None, "stddev is not a finite number (inf): the values overflow"),
                    "histogram": (None, "range -1.7e+308..1.7e+308 is too wide for float edges")}


def test_a_storage_folder_that_cannot_be_created_is_one_line(project: Path) -> None:
    data = base(project)
    data["storage"]["connection"]["filepath"] = str(project / "wh.db" / "sub" / "store.db")  # under a file
    cfg = write_config(project, data)
    (project / "plan.json").write_text(planner.dumps_plan(compile_plan(make_config(base(project)))), encoding="utf-8")
    result = CliRunner().invoke(main, ["apply", str(project / "plan.json"), "-c", str(cfg)])
    assert (result.exit_code, result.stdout, result.stderr) == (
        2, "", f"error: storage database {project / 'wh.db' / 'sub' / 'store.db'}: cannot create its folder "
               f"{project / 'wh.db' / 'sub'}: Not a directory\n"), result.stderr


def test_status_on_a_storage_database_without_tables_is_one_line(project: Path) -> None:
    data = base(project)
    data["storage"]["create_tables"] = False
    sqlite3.connect(project / "empty.db").close()
    data["storage"]["connection"]["filepath"] = str(project / "empty.db")
    cfg = write_config(project, data)
    for args in (["status", "-c", str(cfg)], ["status", "some-run", "-c", str(cfg)]):
        result = CliRunner().invoke(main, args)
        assert (result.exit_code, result.stdout) == (2, ""), result.stderr
        assert re.fullmatch(r"error: storage database unavailable: no such table: baselinr_(plan|task)_runs\n",
                            result.stderr), result.stderr


def test_a_sqlite_warehouse_file_gone_at_apply_fails_its_tasks_and_is_not_recreated(project: Path) -> None:
    with sqlite3.connect(project / "other.db") as raw:
        raw.execute("CREATE TABLE c AS SELECT 1 AS id")
    data = config_data(project, {"wh": {"type": "sqlite", "filepath": str(project / "wh.db")},
                                 "other": {"type": "sqlite", "filepath": str(project / "other.db")}},
                       [{"pattern": "*", "source": "wh"}, {"pattern": "*", "source": "other"}])
    cfg = write_config(project, data)
    (project / "plan.json").write_text(planner.dumps_plan(compile_plan(make_config(data))), encoding="utf-8")
    (project / "wh.db").unlink()
    result = CliRunner().invoke(main, ["apply", str(project / "plan.json"), "-c", str(cfg)])
    assert (result.exit_code, result.stdout) == (1, ""), result.output
    gone = f"database file {str(project / 'wh.db')!r} not found"
    config = make_config(data)
    assert task_states(config, only_run_id(config)) == {
        "wh.main.a": ("failed", gone), "wh.main.b": ("failed", gone), "other.main.c": ("succeeded", None)}
    assert not (project / "wh.db").exists()


def test_a_cap_for_a_warehouse_the_plan_lacks_is_refused_before_anything_runs(project: Path) -> None:
    data = base(project)
    cfg = write_config(project, data)
    (project / "plan.json").write_text(planner.dumps_plan(compile_plan(make_config(data))), encoding="utf-8")
    refused("apply", str(project / "plan.json"), "-c", str(cfg), "--cap", "whx=2",
            message="--cap: unknown warehouse 'whx' (the plan has: wh)", store=project / "store.db")


# A sitecustomize that sends this process a real SIGINT the moment MODULE is first imported: a
# Ctrl-C at a known point of start-up, without timing.
INTERRUPT_ON_IMPORT = """
import os, signal, sys

class Interrupt:
    def find_spec(self, name, path=None, target=None):
        if name == MODULE:
            sys.meta_path.remove(self)
            os.kill(os.getpid(), signal.SIGINT)
        return None

sys.meta_path.insert(0, Interrupt())
"""


def interrupted_on_import(tmp_path: Path, module: str, *args: str) -> subprocess.CompletedProcess[str]:
    hook = tmp_path / "hook"
    hook.mkdir()
    (hook / "sitecustomize.py").write_text(f"MODULE = {module!r}\n{INTERRUPT_ON_IMPORT}", encoding="utf-8")
    path = os.pathsep.join(p for p in (str(hook), os.environ.get("PYTHONPATH")) if p)
    return subprocess.run([sys.executable, "-m", "baselinr", *args], capture_output=True, text=True,
                          cwd=tmp_path, env={**os.environ, "PYTHONPATH": path})


def test_the_console_script_is_the_small_entry_point() -> None:
    import baselinr.__main__

    [script] = entry_points(group="console_scripts", name="baselinr")
    assert script.load() is baselinr.__main__.main


@pytest.mark.parametrize("module, args", [
    ("click", ["plan", "-c", "config.yml"]),     # while the CLI itself is imported
    ("baselinr.runner", ["status"]),              # inside a command
])
def test_ctrl_c_at_any_point_of_a_command_is_aborted_exit_130(tmp_path: Path, module: str, args: list[str]) -> None:
    proc = interrupted_on_import(tmp_path, module, *args)
    assert (proc.returncode, proc.stdout, proc.stderr) == (130, "", "aborted\n")
    assert not (tmp_path / ".baselinr").exists()
