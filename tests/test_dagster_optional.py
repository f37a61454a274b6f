"""Dagster is optional: with every ``dagster`` import blocked, the core imports, plans and applies,
and only the integration package refuses, naming the extra to install."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

SCRIPT = '''
import importlib.abc, sys

class BlockDagster(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name == "dagster" or name.startswith(("dagster.", "dagster_")):
            raise ImportError(f"blocked: {name}")
        return None

sys.meta_path.insert(0, BlockDagster())

import sqlite3
import baselinr.cli, baselinr.integrations, baselinr.runner, planner
from baselinr.config import parse_config
from baselinr.connectors import gather_catalog
from baselinr.runner import apply_plan
from baselinr.runner.reporter import SilentReporter

db = sqlite3.connect(sys.argv[1] + "/wh.db")
db.executescript("CREATE TABLE t (a INTEGER); INSERT INTO t VALUES (1), (2), (NULL);")
db.close()
config = parse_config({"source": {"type": "sqlite", "filepath": sys.argv[1] + "/wh.db"},
                       "storage": {"connection": {"type": "sqlite", "filepath": sys.argv[1] + "/store.db"}},
                       "profiling": {"tables": [{"table": "t"}], "metrics": ["count"], "compute_histograms": False}})
summary = apply_plan(planner.compile(config, gather_catalog(config)), config, reporter=SilentReporter())
print("applied", summary.status)
print("dagster loaded:", any(m == "dagster" or m.startswith("dagster.") for m in sys.modules))
try:
    import baselinr.integrations.dagster
except ImportError as exc:
    print("refused:", exc)
'''


def test_core_runs_without_dagster_and_the_integration_names_the_extra(tmp_path: Path) -> None:
    out = subprocess.run([sys.executable, "-c", textwrap.dedent(SCRIPT), str(tmp_path)], cwd=REPO,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines() == [
        "applied succeeded",
        "dagster loaded: False",
        "refused: the Dagster integration needs dagster: pip install 'baselinr[dagster]'",
    ]
