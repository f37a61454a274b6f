"""Prometheus metrics: the live HTTP endpoint during a run, counters equal to outcomes, gauges
back to 0, the --metrics-file textfile, keep_alive, independent registries."""

from __future__ import annotations

import socket
import threading
import urllib.request
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from baselinr.config.loader import parse_config
from baselinr.errors import ConfigError
from baselinr.events import build_event_bus
from baselinr.utils.metrics import BATCH_BUCKETS, kept_alive_ports, serve_kept_alive_until_interrupt
from tests.pgserver import free_port
from tests.test_observability_helpers import simulate_run

WORKER_METRICS = ("baselinr_active_workers", "baselinr_worker_tasks", "baselinr_worker_queue_size",
                  "baselinr_batch_duration_seconds", "baselinr_tables_profiled", "baselinr_profiling_duration_seconds",
                  "baselinr_rows_scanned")


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """``{(sample name, sorted labels): value}`` parsed by prometheus_client's own parser."""
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def scrape(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
        return response.read().decode()


def value(parsed: dict, name: str, **labels: str) -> float:
    return parsed.get((name, tuple(sorted(labels.items()))), 0.0)


def monitoring_config(port: int, keep_alive: bool = False):
    return parse_config({"monitoring": {"enable_metrics": True, "port": port, "keep_alive": keep_alive}})


def test_live_endpoint_during_a_run_then_zero_gauges_and_exact_counters(tmp_path: Path) -> None:
    port = free_port()
    bus = build_event_bus(monitoring_config(port), metrics_file=tmp_path / "baselinr.prom")
    workers = 8
    gate = threading.Barrier(workers + 1)
    result: dict = {}
    runner = threading.Thread(target=lambda: result.update(run=simulate_run(bus, tables=48, workers=workers, gate=gate)))
    runner.start()
    gate.wait()  # every worker is inside its first task
    live = samples(scrape(port))
    gate.wait()
    runner.join()

    # While running: 8 workers active across the two warehouses, with only low-cardinality labels.
    assert value(live, "baselinr_active_workers", warehouse="pg") + \
        value(live, "baselinr_active_workers", warehouse="lite") == workers
    assert value(live, "baselinr_worker_tasks_total", warehouse="pg", status="started") == workers / 2
    label_sets = {(name, tuple(k for k, _ in labels)) for name, labels in live if name.startswith("baselinr_")}
    assert ("baselinr_active_workers", ("warehouse",)) in label_sets
    assert ("baselinr_worker_tasks_total", ("status", "warehouse")) in label_sets
    assert ("baselinr_worker_queue_size", ("warehouse",)) in label_sets
    assert all(not {"worker_id", "table", "worker"} & set(keys) for _name, keys in label_sets)

    bus.close()
    run = result["run"]
    with pytest.raises(OSError):  # the server is stopped at close (no keep_alive)
        scrape(port)
    final = samples((tmp_path / "baselinr.prom").read_text())
    for warehouse in ("pg", "lite"):
        assert value(final, "baselinr_active_workers", warehouse=warehouse) == 0
        assert value(final, "baselinr_worker_queue_size", warehouse=warehouse) == 0
        done, failed = run.succeeded[warehouse], run.failed[warehouse]
        assert value(final, "baselinr_worker_tasks_total", warehouse=warehouse, status="started") == done + failed
        assert value(final, "baselinr_worker_tasks_total", warehouse=warehouse, status="completed") == done
        assert value(final, "baselinr_worker_tasks_total", warehouse=warehouse, status="failed") == failed
        assert value(final, "baselinr_tables_profiled_total", warehouse=warehouse, status="completed") == done
        assert value(final, "baselinr_tables_profiled_total", warehouse=warehouse, status="failed") == failed
        assert value(final, "baselinr_rows_scanned_total", warehouse=warehouse) == run.rows[warehouse]
        assert value(final, "baselinr_profiling_duration_seconds_count", warehouse=warehouse) == done
        assert value(final, "baselinr_batch_duration_seconds_count", warehouse=warehouse, batch_size="24") == 1
        # duration 7.5 s falls in the buckets from 10 up, not in 1 or 5
        assert [value(final, "baselinr_batch_duration_seconds_bucket", warehouse=warehouse, batch_size="24",
                      le=str(float(b))) for b in BATCH_BUCKETS] == [0, 0, 1, 1, 1, 1, 1]


def test_metrics_file_is_written_atomically_and_parses(tmp_path: Path) -> None:
    target = tmp_path / "textfile" / "baselinr.prom"
    target.parent.mkdir()
    with build_event_bus(None, metrics_file=target) as bus:
        run = simulate_run(bus, tables=10, workers=2)
    assert sorted(p.name for p in target.parent.iterdir()) == ["baselinr.prom"]  # no temp file left
    families = {f.name for f in text_string_to_metric_families(target.read_text())}
    assert set(WORKER_METRICS) <= families
    parsed = samples(target.read_text())
    assert sum(value(parsed, "baselinr_worker_tasks_total", warehouse=w, status="failed") for w in ("pg", "lite")) == \
        run.emitted["worker_failed"]


def test_each_run_has_its_own_registry(tmp_path: Path) -> None:
    for name in ("a", "b"):
        with build_event_bus(None, metrics_file=tmp_path / f"{name}.prom") as bus:
            simulate_run(bus, tables=10, workers=2)
    a, b = (samples((tmp_path / f"{n}.prom").read_text()) for n in ("a", "b"))
    assert value(b, "baselinr_worker_tasks_total", warehouse="pg", status="started") == 5  # not 10
    assert value(a, "baselinr_worker_tasks_total", warehouse="pg", status="started") == 5


def test_keep_alive_serves_after_the_run_until_stopped() -> None:
    port = free_port()
    with build_event_bus(monitoring_config(port, keep_alive=True)) as bus:
        simulate_run(bus, tables=10, workers=2)
    assert kept_alive_ports() == [port]
    after = samples(scrape(port))
    assert value(after, "baselinr_worker_tasks_total", warehouse="pg", status="started") == 5
    assert value(after, "baselinr_active_workers", warehouse="pg") == 0
    stop = threading.Event()
    stop.set()  # stands for the user's Ctrl-C
    serve_kept_alive_until_interrupt(stop)
    assert kept_alive_ports() == []
    with pytest.raises(OSError):
        scrape(port)


def test_a_busy_port_or_a_missing_directory_is_bad_input(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("0.0.0.0", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(ConfigError, match=f"monitoring.port: cannot serve metrics on port {port}"):
            build_event_bus(monitoring_config(port))
    with pytest.raises(ConfigError, match="--metrics-file: directory .*nowhere does not exist"):
        build_event_bus(None, metrics_file=tmp_path / "nowhere" / "m.prom")
    with pytest.raises(ConfigError, match="--metrics-file: .* is a directory"):
        build_event_bus(None, metrics_file=tmp_path)
    (tmp_path / "config.yml").write_text("")
    with pytest.raises(ConfigError, match=f"^--metrics-file: {tmp_path / 'config.yml'} is a file, not a directory$"):
        build_event_bus(None, metrics_file=tmp_path / "config.yml" / "m.prom")
    with pytest.raises(ConfigError, match="^--metrics-file: /dev/null is not a regular file"):
        build_event_bus(None, metrics_file="/dev/null")


def test_a_metrics_file_behind_a_symlink_is_written_through_the_link(tmp_path: Path) -> None:
    (tmp_path / "real.prom").write_text("old")
    (tmp_path / "link.prom").symlink_to("real.prom")
    build_event_bus(None, metrics_file=tmp_path / "link.prom").close()
    assert (tmp_path / "link.prom").is_symlink()
    assert "baselinr_active_workers" in (tmp_path / "real.prom").read_text()


def test_a_bad_hook_stops_the_server_and_writes_no_metrics_file(tmp_path: Path) -> None:
    port = free_port()
    config = parse_config({"monitoring": {"enable_metrics": True, "port": port, "keep_alive": True},
                           "hooks": {"hooks": [{"type": "custom", "module": "no_such_module_q", "class_name": "H"}]}})
    with pytest.raises(ConfigError, match=r"hooks\.hooks\[0\]\.module"):
        build_event_bus(config, metrics_file=tmp_path / "m.prom")
    assert not (tmp_path / "m.prom").exists() and kept_alive_ports() == []
    with pytest.raises(OSError):
        scrape(port)
