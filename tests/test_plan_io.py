"""Plan files: round trip, and every way a plan is refused with its exact one-line message."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Callable

import pytest

import planner
from baselinr.errors import PlanError
from planner.schema import REGENERATE, SCHEMA_PATH, main as schema_main, plan_schema_json
from tests.test_planner_fixtures import multi_catalog, multi_config

REPLAN = "re-run baselinr plan"


@pytest.fixture(scope="module")
def plan_text() -> str:
    return planner.dumps_plan(planner.compile(multi_config(), multi_catalog()))


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "plan.json"
    path.write_text(text, encoding="utf-8")
    return path


def resealed(text: str, edit: Callable[[dict[str, Any]], None]) -> str:
    """Edit the plan's data and recompute every digest, so only the structural check can catch it."""
    data = json.loads(text)
    edit(data)
    data["plan_digest"] = ""
    for task in data["tasks"]:
        task["digest"] = ""
    return planner.dumps_plan(planner.Plan.model_validate(data))


def refusal(tmp_path: Path, text: str) -> str:
    with pytest.raises(PlanError) as err:
        planner.load_plan(write(tmp_path, text))
    message = str(err.value)
    assert "\n" not in message and err.value.exit_code == 2
    return message.removeprefix(f"{tmp_path / 'plan.json'}: ")


def test_round_trip_from_file_and_text(tmp_path: Path, plan_text: str) -> None:
    loaded = planner.load_plan(write(tmp_path, plan_text))
    assert planner.dumps_plan(loaded) == plan_text
    assert planner.load_plan(plan_text) == loaded
    planner.write_plan(loaded, tmp_path / "again.json")
    assert (tmp_path / "again.json").read_text(encoding="utf-8") == plan_text
    assert plan_text.endswith("}\n") and "\n  \"batches\": [\n" in plan_text  # 2-space indent, sorted keys


def test_unwritable_output_leaves_nothing_behind(tmp_path: Path, plan_text: str) -> None:
    target = tmp_path / "missing-dir" / "plan.json"
    with pytest.raises(PlanError, match=r"plan\.json: cannot write plan file: No such file or directory$"):
        planner.write_plan(planner.load_plan(plan_text), target)
    assert list(tmp_path.iterdir()) == []


def test_a_symlink_is_written_through_and_a_device_or_pipe_refused(tmp_path: Path, plan_text: str) -> None:
    plan = planner.load_plan(plan_text)
    (tmp_path / "real.json").write_text("{}")
    (tmp_path / "link.json").symlink_to("real.json")
    planner.write_plan(plan, tmp_path / "link.json")
    assert (tmp_path / "link.json").is_symlink() and (tmp_path / "real.json").read_text() == plan_text
    os.mkfifo(tmp_path / "pipe")
    for target in ("/dev/null", str(tmp_path / "pipe")):
        with pytest.raises(PlanError, match=f"^{target}: not a regular file"):
            planner.write_plan(plan, target)
    assert Path("/dev/null").is_char_device() and (tmp_path / "pipe").is_fifo()


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(PlanError, match=r"nope\.json: plan file not found$"):
        planner.load_plan(tmp_path / "nope.json")


def test_not_json(tmp_path: Path) -> None:
    assert refusal(tmp_path, "format_version: 1\ntasks: []\n") == ("not a plan: invalid JSON at line 1, column 1: "
                                                                   "Expecting value")
    assert refusal(tmp_path, '{"format_version": 1 "x": 2}') == ("not a plan: invalid JSON at line 1, column 22: "
                                                                 "Expecting ',' delimiter")


def test_truncated(tmp_path: Path, plan_text: str) -> None:
    cut = plan_text[: len(plan_text) // 2]
    line = cut.count("\n") + 1
    assert refusal(tmp_path, cut) == f"the plan is truncated (the JSON ends early at line {line}); {REPLAN}"


def test_a_plan_cut_anywhere_is_called_truncated(plan_text: str) -> None:
    """Inside a string, after a number, right after a closing brace: wherever a copy stopped."""
    for end in range(1, len(plan_text) - 2, 13):
        with pytest.raises(PlanError, match=r"the plan is truncated \(the JSON ends early at line \d+\)"):
            planner.load_plan(plan_text[:end])


def test_not_an_object(tmp_path: Path) -> None:
    assert refusal(tmp_path, "[1, 2]\n") == "not a plan: expected a JSON object, got list"


@pytest.mark.parametrize("version", [2, 0, "1", None])
def test_unknown_format_version(tmp_path: Path, plan_text: str, version: Any) -> None:
    data = json.loads(plan_text)
    data["format_version"] = version
    assert refusal(tmp_path, json.dumps(data)) == (f"unknown plan format_version {version!r}; this baselinr reads "
                                                   f"format version(s) 1; {REPLAN}")


def test_schema_violation_names_the_field(tmp_path: Path, plan_text: str) -> None:
    data = json.loads(plan_text)
    data["tasks"][1]["histogram_bin"] = 3
    assert refusal(tmp_path, json.dumps(data)) == "invalid plan: tasks[1].histogram_bin: unknown key 'histogram_bin'"
    data = json.loads(plan_text)
    del data["tasks"][0]["schema"]
    assert refusal(tmp_path, json.dumps(data)) == "invalid plan: tasks[0].schema: Field required"


def test_edited_plan_digest_mismatch(tmp_path: Path, plan_text: str) -> None:
    data = json.loads(plan_text)
    data["warehouses"]["lake"]["cap"] = 4
    assert refusal(tmp_path, json.dumps(data)) == ("plan digest mismatch: the plan was edited after compilation; "
                                                   f"{REPLAN}")


def test_edited_task_digest_mismatch(tmp_path: Path, plan_text: str) -> None:
    data = json.loads(plan_text)
    data["tasks"][0]["histogram_bins"] = 99
    assert refusal(tmp_path, json.dumps(data)) == (f"task {data['tasks'][0]['id']}: digest mismatch: the task was "
                                                   f"edited after compilation; {REPLAN}")


def test_unknown_warehouse(tmp_path: Path, plan_text: str) -> None:
    text = resealed(plan_text, lambda d: d["warehouses"].pop("snow"))
    assert refusal(tmp_path, text) == (f"task snow.RAW.V_EVENTS: unknown warehouse 'snow' (the plan defines dwh, lake); "
                                       f"{REPLAN}")


def test_duplicate_task_ids(tmp_path: Path, plan_text: str) -> None:
    text = resealed(plan_text, lambda d: d["tasks"].append(dict(d["tasks"][0])))
    assert refusal(tmp_path, text) == f"duplicate task id dwh.public.dim_customer; {REPLAN}"


def test_dependency_cycle(tmp_path: Path, plan_text: str) -> None:
    def edit(data: dict[str, Any]) -> None:
        airlines = next(t for t in data["tasks"] if t["id"] == "lake.main.airlines")
        airlines["depends_on"] = ["lake.main.flights"]

    assert refusal(tmp_path, resealed(plan_text, edit)) == (
        "dependency cycle: lake.main.airlines -> lake.main.flights -> lake.main.airlines (each task depends on the next)")


def test_unknown_dependency(tmp_path: Path, plan_text: str) -> None:
    def edit(data: dict[str, Any]) -> None:
        data["tasks"][0]["depends_on"] = ["lake.main.gone"]

    assert refusal(tmp_path, resealed(plan_text, edit)) == (
        f"task dwh.public.dim_customer: depends on lake.main.gone, which is not a task of this plan; {REPLAN}")


def test_batch_with_unknown_task_or_task_without_batch(tmp_path: Path, plan_text: str) -> None:
    def stray(data: dict[str, Any]) -> None:
        data["batches"][0]["tasks"].append("lake.main.gone")

    assert refusal(tmp_path, resealed(plan_text, stray)) == (
        f"batch dwh.L0.b1: lake.main.gone is not a task of this plan; {REPLAN}")

    def unbatched(data: dict[str, Any]) -> None:
        data["batches"] = data["batches"][1:]

    assert refusal(tmp_path, resealed(plan_text, unbatched)) == (
        f"task dwh.public.dim_customer: in 0 batches, expected exactly 1; {REPLAN}")


def test_committed_schema_matches_the_models() -> None:
    assert SCHEMA_PATH.read_text(encoding="utf-8") == plan_schema_json(), (
        f"specs/plan.schema.json is out of date; regenerate it with: {REGENERATE}")
    assert schema_main(["--check"]) == 0


def test_schema_describes_the_plan(plan_text: str) -> None:
    schema = json.loads(plan_schema_json())
    assert set(schema["required"]) <= set(json.loads(plan_text))
    assert set(schema["$defs"]["TaskSpec"]["properties"]) == set(json.loads(plan_text)["tasks"][0])


def test_older_readable_version_is_accepted_and_versions_are_named(tmp_path: Path, plan_text: str,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    old_version = resealed(plan_text, lambda d: d.update(format_version=0))
    assert refusal(tmp_path, old_version) == (f"unknown plan format_version 0; this baselinr reads format version(s) 1; "
                                              f"{REPLAN}")
    monkeypatch.setattr("planner.io.READABLE_FORMAT_VERSIONS", (0, 1))
    assert planner.load_plan(old_version).format_version == 0
    assert refusal(tmp_path, resealed(plan_text, lambda d: d.update(format_version=3))) == (
        f"unknown plan format_version 3; this baselinr reads format version(s) 0, 1; {REPLAN}")
