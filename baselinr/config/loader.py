"""Read a YAML/JSON config file into a ``BaselinrConfig`` with one-line, field-naming errors."""

from __future__ import annotations

import difflib
import os
import re
import types
import typing
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from baselinr.config.models import BaselinrConfig
from baselinr.errors import ConfigError

_VAR_RE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-(.*?))?\}")
MAX_VALUES = 1_000_000  # values a config may expand to, aliases copied: far above any real config
MAX_DEPTH = 100  # nesting levels; a real config has fewer than 10


class _StrictLoader(yaml.SafeLoader):
    """``SafeLoader`` that refuses a key written twice in one mapping (PyYAML silently keeps the last,
    so a second ``source:`` or ``max_workers:`` would quietly win)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        first_line: dict[Any, int] = {}
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":  # `<<: *anchor` keys may be overridden
                continue
            key = self.construct_object(key_node, deep=deep)
            if isinstance(key, typing.Hashable) and key in first_line:
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key {key!r} (first at line {first_line[key]})", key_node.start_mark)
            if isinstance(key, typing.Hashable):
                first_line[key] = key_node.start_mark.line + 1
        return super().construct_mapping(node, deep)


def load_config(path: str | os.PathLike[str]) -> BaselinrConfig:
    """Load, substitute ``${VAR}``/``${VAR:-default}`` and validate a config file."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{path}: config file not found") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not a config: the file is not UTF-8 text") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read config file: {exc.strerror}") from None
    try:
        data = yaml.load(text, Loader=_StrictLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise ConfigError(f"{path}: invalid YAML{where}: {exc.problem}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: invalid YAML: {exc}") from None
    except RecursionError:  # the parser recurses per nesting level
        raise ConfigError(f"{path}: invalid YAML: nested too deeply") from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: the config must be a mapping of sections, got {type(data).__name__}")
    return parse_config(data, source=str(path))


def parse_config(data: dict[str, Any], source: str = "config") -> BaselinrConfig:
    """Validate an already-parsed config mapping; ``source`` names it in errors."""
    templates: dict[str, str] = {}
    data = _substitute(data, "", templates, source)
    try:
        config = BaselinrConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(f"{source}: {format_validation_error(exc, BaselinrConfig)}") from None
    config._templates = templates
    return config


def _substitute(data: Any, path: str, templates: dict[str, str], source: str) -> Any:
    """Replace ``${VAR}`` in every string, recording the original template by dotted path.

    YAML aliases are expanded into copies, so aliases nested in aliases ("billion laughs") could
    grow without bound: more than ``MAX_VALUES`` values, or nesting deeper than ``MAX_DEPTH`` (an
    alias inside itself), is a ``ConfigError``.
    """
    visited = 0

    def walk(value: Any, path: str, depth: int) -> Any:
        nonlocal visited
        visited += 1
        if visited > MAX_VALUES:
            raise ConfigError(f"{source}: the config expands to more than {MAX_VALUES} values (YAML aliases "
                              "nested in aliases?); write the repeated parts out")
        if depth > MAX_DEPTH:
            top = re.split(r"[.\[]", path, maxsplit=1)[0]
            raise ConfigError(f"{source}: {top}: nested more than {MAX_DEPTH} levels deep "
                              "(a YAML alias inside itself?)")
        if isinstance(value, dict):
            return {k: walk(v, f"{path}.{k}" if path else str(k), depth + 1) for k, v in value.items()}
        if isinstance(value, list):
            return [walk(v, f"{path}[{i}]", depth + 1) for i, v in enumerate(value)]
        return _substitute_string(value, path, templates, source)

    return walk(data, path, 0)


def _substitute_string(value: Any, path: str, templates: dict[str, str], source: str) -> Any:
    if not isinstance(value, str) or "${" not in value:
        return value

    def replace(match: re.Match[str]) -> str:
        name, default = match.group(1), match.group(2)
        if name in os.environ:
            return os.environ[name]
        if default is not None:
            return default
        raise ConfigError(f"{source}: {path}: environment variable {name} is not set "
                          f"(export it, or write ${{{name}:-default}})")

    templates[path] = value
    return _VAR_RE.sub(replace, value)


def format_validation_error(exc: ValidationError, model: type[BaseModel]) -> str:
    """One line naming the first bad field (``profiling.tables[2].pattern: ...``)."""
    errors = exc.errors()
    err = errors[0]
    loc = [part for part in err["loc"] if not (isinstance(part, str) and part.startswith("function-"))]
    where = _format_loc(loc)
    if err["type"] == "extra_forbidden":
        known = _fields_at(model, loc[:-1])
        hint = difflib.get_close_matches(str(loc[-1]), known, n=1)
        msg = f"unknown key {loc[-1]!r}" + (f" (did you mean {hint[0]!r}?)" if hint else
                                            f" (known keys: {', '.join(sorted(known))})" if known else "")
    else:
        msg = err["msg"].removeprefix("Value error, ")
        if err["type"] == "literal_error":
            msg = f"{msg}, got {err.get('input')!r}"
    more = f" (and {len(errors) - 1} more problem{'s' if len(errors) > 2 else ''})" if len(errors) > 1 else ""
    return f"{where}: {msg}{more}" if where else f"{msg}{more}"


def _format_loc(loc: list[Any]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _fields_at(model: type[BaseModel], loc: list[Any]) -> list[str]:
    """Field names (aliases) of the model found by following ``loc`` from ``model``."""
    current: Any = model
    for part in loc:
        current = _unwrap(current, isinstance(part, int))
        if isinstance(part, str) and isinstance(current, type) and issubclass(current, BaseModel):
            field = next((f for n, f in current.model_fields.items() if (f.alias or n) == part), None)
            if field is None:
                return []
            current = field.annotation
        elif isinstance(part, str):  # a dict key: step into the value type
            current = _unwrap(current, True)
    current = _unwrap(current, False)
    if isinstance(current, type) and issubclass(current, BaseModel):
        return [f.alias or n for n, f in current.model_fields.items()]
    return []


def _unwrap(tp: Any, into_container: bool) -> Any:
    """Strip Optional; with ``into_container`` step into list/dict element types."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        return _unwrap(args[0], into_container) if len(args) == 1 else tp
    if into_container and origin in (list, dict):
        return _unwrap(typing.get_args(tp)[-1], False)
    return tp
