"""Generate docs/config-reference.md from the config models (``python -m baselinr.config.reference``).

A test compares the committed file with this output, so the reference cannot drift from the code.
"""

from __future__ import annotations

import sys
import types
import typing
from pathlib import Path
from typing import Any

from pydantic import BaseModel
from pydantic_core import PydanticUndefined

from baselinr.config.models import BaselinrConfig

OUTPUT = Path(__file__).resolve().parents[2] / "docs" / "config-reference.md"
HEADER = """# Config reference

Generated from the pydantic models in `baselinr/config/models.py` by
`python -m baselinr.config.reference`; a test fails when this file and the models disagree.
Unknown keys are rejected (with a "did you mean" hint). See `examples/config.yml` for a
commented example of every section.
"""


def render() -> str:
    """The whole reference as Markdown."""
    sections: list[str] = [HEADER]
    seen: set[type[BaseModel]] = set()
    queue: list[tuple[str, type[BaseModel]]] = [("(top level)", BaselinrConfig)]
    while queue:
        path, model = queue.pop(0)
        if model in seen:
            continue
        seen.add(model)
        sections.append(f"\n## `{path}` — {model.__name__}\n")
        doc = (model.__doc__ or "").strip().splitlines()
        if doc:
            sections.append(f"{doc[0]}\n")
        sections.append("\n| key | type | default | description |\n|---|---|---|---|\n")
        for name, field in model.model_fields.items():
            key = field.alias or name
            sections.append(f"| `{key}` | {_type_name(field.annotation)} | {_default(field)} | "
                            f"{(field.description or '').replace('|', '/')} |\n")
            for nested in _models_in(field.annotation):
                child = key if path == "(top level)" else f"{path}.{key}"
                queue.append((child, nested))
    return "".join(sections)


def _type_name(tp: Any) -> str:
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin is typing.Annotated:  # Int, Float: a number with a validator
        return _type_name(args[0])
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_type_name(a) for a in args if a is not type(None)) + (
            " or null" if type(None) in args else "")
    if origin is typing.Literal:
        return " / ".join(f"`{a}`" for a in args)
    if origin in (list, tuple):
        return f"list of {_type_name(args[0])}"
    if origin is dict:
        return f"map of {_type_name(args[0])} to {_type_name(args[1])}"
    name = getattr(tp, "__name__", str(tp))
    return {"str": "string", "SecretStr": "string (secret)", "int": "integer", "bool": "boolean", "Any": "any"}.get(name, name)


def _default(field: Any) -> str:
    if field.default_factory is not None:
        value = field.default_factory()
        if isinstance(value, BaseModel):
            return "see below"
        return f"`{value}`" if value not in ({}, []) else "empty"
    if field.default is PydanticUndefined:
        return "required"
    return f"`{field.default}`" if field.default is not None else "none"


def _models_in(tp: Any) -> list[type[BaseModel]]:
    if isinstance(tp, type) and issubclass(tp, BaseModel):
        return [tp]
    return [m for arg in typing.get_args(tp) for m in _models_in(arg)]


if __name__ == "__main__":
    OUTPUT.parent.mkdir(exist_ok=True)
    OUTPUT.write_text(render(), encoding="utf-8")
    sys.stderr.write(f"wrote {OUTPUT}\n")
