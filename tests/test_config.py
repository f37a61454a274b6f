"""The config language: defaults, ${VAR} substitution, and one-line errors naming the field."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from baselinr.config import ExecutionConfig, load_config, parse_config
from baselinr.errors import ConfigError

SQLITE = {"type": "sqlite", "filepath": "w.db"}


def error_of(data: dict) -> str:
    with pytest.raises(ConfigError) as info:
        parse_config(data, source="c.yml")
    message = str(info.value)
    assert "\n" not in message
    return message


def test_execution_section_may_be_absent_and_defaults_to_sequential():
    config = parse_config({"source": SQLITE})
    assert config.execution == ExecutionConfig()
    assert (config.execution.max_workers, config.execution.batch_size, config.execution.queue_size) == (1, 10, 100)
    assert config.execution.warehouse_limits == {}


def test_example_config_loads():
    config = load_config(Path(__file__).parent.parent / "examples" / "config.yml")
    assert config.execution.max_workers == 1
    assert config.execution.warehouse_limits == {"snowflake": 20, "postgres": 8, "sqlite": 1}


@pytest.mark.parametrize("execution, expected", [
    ({"max_workers": 0}, "c.yml: execution.max_workers: Input should be greater than or equal to 1"),
    ({"max_workers": 65}, "c.yml: execution.max_workers: Input should be less than or equal to 64"),
    ({"batch_size": 0}, "c.yml: execution.batch_size: Input should be greater than or equal to 1"),
    ({"queue_size": 5}, "c.yml: execution.queue_size: Input should be greater than or equal to 10"),
    ({"max_worker": 2}, "c.yml: execution.max_worker: unknown key 'max_worker' (did you mean 'max_workers'?)"),
    ({"warehouse_limits": {"postgres": 0}}, "c.yml: execution.warehouse_limits: Value error, limit for 'postgres' must be at least 1, got 0"
     .replace("Value error, ", "")),
])
def test_execution_errors_name_the_field(execution, expected):
    assert error_of({"source": SQLITE, "execution": execution}) == expected


@pytest.mark.parametrize("data, expected", [
    ({"execution": {"max_workers": True}}, "c.yml: execution.max_workers: expected a number, got true"),
    ({"execution": {"warehouse_limits": {"sqlite": False}}},
     "c.yml: execution.warehouse_limits.sqlite: expected a number, got false"),
    ({"profiling": {"histogram_bins": True}}, "c.yml: profiling.histogram_bins: expected a number, got true"),
    ({"retry": {"max_backoff": True}}, "c.yml: retry.max_backoff: expected a number, got true"),
    ({"execution": {"warehouse_limits": {"nonexistent": 3}}},
     "c.yml: execution.warehouse_limits: 'nonexistent' is neither a warehouse of this config (sqlite) nor a "
     "warehouse type (postgres, sqlite, mysql, duckdb, snowflake, bigquery, redshift)"),
    ({"source": {"type": "postgres", "host": "h", "port": 99999}},
     "c.yml: source.port: Input should be less than or equal to 65535"),
    ({"source": {"type": "postgres", "host": "h", "port": 0}},
     "c.yml: source.port: Input should be greater than or equal to 1"),
])
def test_bad_values_are_not_taken_silently(data, expected):
    assert error_of({"source": SQLITE, **data}) == expected


def test_numbers_as_strings_and_limits_by_name_or_type_are_accepted():
    config = parse_config({"sources": {"dwh": {"type": "postgres", "host": "h", "port": "5433"}},
                           "execution": {"max_workers": "1", "warehouse_limits": {"dwh": "2", "snowflake": 3}}})
    assert (config.sources["dwh"].port, config.execution.max_workers) == (5433, 1)
    assert config.execution.warehouse_limits == {"dwh": 2, "snowflake": 3}


@pytest.mark.parametrize("cpus", [1, 2, 8])
def test_max_workers_above_four_times_cpus_quotes_both_numbers(monkeypatch, cpus):
    monkeypatch.setattr(os, "cpu_count", lambda: cpus)  # the rule, whatever machine runs the suite
    assert parse_config({"source": SQLITE, "execution": {"max_workers": 4 * cpus}}).execution.max_workers == 4 * cpus
    message = error_of({"source": SQLITE, "execution": {"max_workers": 4 * cpus + 1}})
    assert message == (f"c.yml: execution.max_workers: max_workers {4 * cpus + 1} exceeds 4 x CPU count "
                       f"({4 * cpus} on this machine with {cpus} CPUs)")


def test_selection_errors_point_at_the_entry():
    tables = [{"table": "a"}, {"table": "b"}, {"pattern": "(", "pattern_type": "regex"}]
    message = error_of({"source": SQLITE, "profiling": {"tables": tables}})
    assert message.startswith("c.yml: profiling.tables[2].pattern: invalid regex '('")


def test_selection_naming_a_missing_source():
    message = error_of({"sources": {"wh": SQLITE}, "profiling": {"tables": [{"table": "a", "source": "nope"}]}})
    assert message == "c.yml: profiling.tables[0].source: unknown source 'nope'; defined: wh"


@pytest.mark.parametrize("warehouse", [{"sources": {}}, {"source": None}, {}])
def test_tables_without_a_warehouse_are_refused(warehouse):
    assert error_of({**warehouse, "profiling": {"tables": [{"table": "flights"}]}}) == (
        "c.yml: profiling.tables: no warehouse to read the tables from; add 'source:' (one warehouse) "
        "or 'sources:' (several, by name)")
    assert parse_config(warehouse).warehouses == {}  # no tables, no warehouse needed (e.g. storage only)


def test_unknown_top_level_section_gets_a_hint():
    assert error_of({"source": SQLITE, "profilling": {}}) == \
        "c.yml: profilling: unknown key 'profilling' (did you mean 'profiling'?)"


def test_unknown_warehouse_type():
    assert error_of({"source": {"type": "oracle", "host": "h"}}).startswith("c.yml: source.type: Input should be")


def test_env_substitution_and_defaults(monkeypatch):
    monkeypatch.setenv("BASELINR_TEST_HOST", "db.example")
    monkeypatch.delenv("BASELINR_TEST_PORT", raising=False)
    config = parse_config({"source": {"type": "postgres", "host": "${BASELINR_TEST_HOST}",
                                      "port": "${BASELINR_TEST_PORT:-5433}"}})
    assert config.source.host == "db.example"
    assert config.source.port == 5433
    assert config.public_connection("postgres") == {"type": "postgres", "host": "${BASELINR_TEST_HOST}",
                                                    "port": "${BASELINR_TEST_PORT:-5433}"}


def test_unset_variable_is_a_clear_error(monkeypatch):
    monkeypatch.delenv("BASELINR_TEST_UNSET", raising=False)
    assert error_of({"source": {"type": "postgres", "host": "h", "password": "${BASELINR_TEST_UNSET}"}}) == \
        "c.yml: source.password: environment variable BASELINR_TEST_UNSET is not set " \
        "(export it, or write ${BASELINR_TEST_UNSET:-default})"


def test_public_connection_drops_secrets():
    config = parse_config({"source": {"type": "postgres", "host": "h", "password": "hunter2",
                                      "extra_params": {"sslmode": "require", "api_key": "k", "token": "t"}}})
    public = config.public_connection("postgres")
    assert public == {"type": "postgres", "host": "h", "extra_params": {"sslmode": "require"}}
    assert "hunter2" not in repr(config)


def test_missing_file_and_bad_yaml(tmp_path):
    with pytest.raises(ConfigError, match=r"nope.yml: config file not found$"):
        load_config(tmp_path / "nope.yml")
    bad = tmp_path / "bad.yml"
    bad.write_text("source:\n  type: sqlite\n   filepath: [x\n")
    with pytest.raises(ConfigError) as info:
        load_config(bad)
    assert "invalid YAML at line 3" in str(info.value)


def test_a_file_that_is_not_utf8_is_one_line(tmp_path):
    binary = tmp_path / "g.yml"
    binary.write_bytes(b"source: {type: sqlite, filepath: \xff\xfe.db}\n")
    with pytest.raises(ConfigError) as info:
        load_config(binary)
    assert str(info.value) == f"{binary}: not a config: the file is not UTF-8 text"


def test_a_key_written_twice_is_refused_naming_both_lines(tmp_path):
    dup = tmp_path / "dup.yml"
    dup.write_text("source:\n  type: sqlite\n  filepath: a.db\nexecution:\n  max_workers: 2\n  max_workers: 4\n")
    with pytest.raises(ConfigError) as info:
        load_config(dup)
    assert str(info.value) == f"{dup}: invalid YAML at line 6, column 3: duplicate key 'max_workers' (first at line 5)"
    merged = tmp_path / "merged.yml"  # a merge key's values may still be overridden
    merged.write_text("sources:\n  a: &b {type: sqlite, filepath: a.db}\n  c:\n    <<: *b\n    filepath: c.db\n")
    assert {n: c.filepath for n, c in load_config(merged).sources.items()} == {"a": "a.db", "c": "c.db"}


def laughs(levels: int, width: int) -> str:
    """YAML whose last anchor expands to ``width ** levels`` strings ("billion laughs")."""
    lines = [f"l0: &l0 [{', '.join(['lol'] * width)}]"]
    lines += [f"l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * width)}]" for i in range(1, levels)]
    return "\n".join(lines) + "\n"


def test_billion_laughs_is_refused_quickly(tmp_path):
    bomb = tmp_path / "bomb.yml"
    bomb.write_text(laughs(9, 9))  # 9**9 = 387,420,489 strings once expanded
    with pytest.raises(ConfigError) as info:
        load_config(bomb)
    assert str(info.value) == (f"{bomb}: the config expands to more than 1000000 values (YAML aliases nested "
                               "in aliases?); write the repeated parts out")


def test_aliases_count_as_copies_against_the_budget(tmp_path, monkeypatch):
    import baselinr.config.loader as loader

    monkeypatch.setattr(loader, "MAX_VALUES", 100)
    small = tmp_path / "small.yml"
    small.write_text(laughs(3, 4))  # the mapping, l0 (1 + 4), l1 (1 + 4 x 5), l2 (1 + 4 x 21): 112 values
    with pytest.raises(ConfigError, match="expands to more than 100 values"):
        load_config(small)
    fine = tmp_path / "fine.yml"  # anchors and merge keys within the budget still work
    fine.write_text("sources:\n  a: &b {type: sqlite, filepath: a.db}\n  c:\n    <<: *b\n    filepath: c.db\n")
    assert {n: c.filepath for n, c in load_config(fine).sources.items()} == {"a": "a.db", "c": "c.db"}


@pytest.mark.parametrize("text, message", [
    ("source: {type: sqlite, filepath: a.db, extra_params: &x {a: *x}}\n",
     "source: nested more than 100 levels deep (a YAML alias inside itself?)"),
    ("profiling: &x {tables: [*x]}\n", "profiling: nested more than 100 levels deep (a YAML alias inside itself?)"),
    ("environment: " + "[" * 3000 + "]" * 3000 + "\n", "invalid YAML: nested too deeply"),
], ids=["alias inside its mapping", "alias inside its list", "deep nesting"])
def test_self_referencing_aliases_and_deep_nesting_are_one_line(tmp_path, text, message):
    path = tmp_path / "deep.yml"
    path.write_text(text)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert str(info.value) == f"{path}: {message}"


def test_sources_map_names_warehouses():
    config = parse_config({"sources": {"wh1": SQLITE, "wh2": {"type": "postgres", "host": "h"}},
                           "profiling": {"tables": [{"table": "a", "source": "wh2"}]}})
    assert sorted(config.warehouses) == ["wh1", "wh2"]
    assert config.warehouse_for(config.profiling.tables[0]) == "wh2"


def test_config_reference_matches_the_models():
    from baselinr.config.reference import OUTPUT, render

    assert OUTPUT.read_text(encoding="utf-8") == render(), \
        "docs/config-reference.md is stale: run python -m baselinr.config.reference"
