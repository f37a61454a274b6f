"""Generate ``specs/plan.schema.json`` from the plan models.

    python -m planner.schema           # rewrite the committed schema
    python -m planner.schema --check   # exit 1 if it is out of date
"""

from __future__ import annotations

import sys
from pathlib import Path

from planner.canonical import canonical_json
from planner.models import Plan

SCHEMA_PATH = Path(__file__).resolve().parent.parent / "specs" / "plan.schema.json"
REGENERATE = "python -m planner.schema"


def plan_schema_json() -> str:
    """The JSON Schema of the plan format, as canonical JSON."""
    return canonical_json(Plan.model_json_schema(by_alias=True))


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    expected = plan_schema_json()
    if "--check" in argv:
        current = SCHEMA_PATH.read_text(encoding="utf-8") if SCHEMA_PATH.exists() else ""
        if current != expected:
            print(f"{SCHEMA_PATH.name} is out of date; regenerate it with: {REGENERATE}", file=sys.stderr)
            return 1
        return 0
    SCHEMA_PATH.write_text(expected, encoding="utf-8")
    print(f"wrote {SCHEMA_PATH.name}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
