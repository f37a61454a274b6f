"""Canonical JSON and digests: the same plan always serializes to the same bytes.

Two forms of the same canonical data (keys sorted, UTF-8 kept, no NaN):
- ``canonical_json``: 2-space indent + trailing newline, for files people read and diff;
- ``compact_json``: no whitespace, what digests hash. It uses the C encoder (``indent`` forces
  the pure-Python one, ~10x slower), which keeps a 100,000-table plan's digests to seconds.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any, Callable, Iterator

from pydantic import BaseModel


def _plain(data: Any) -> Any:
    return data.model_dump(mode="json", by_alias=True) if isinstance(data, BaseModel) else data


def canonical_json(data: Any) -> str:
    """Sorted keys, 2-space indent, UTF-8 kept, trailing newline."""
    return json.dumps(_plain(data), sort_keys=True, indent=2, ensure_ascii=False, allow_nan=False) + "\n"


def iter_canonical_json(data: BaseModel, split: str) -> Iterator[str]:
    """``canonical_json(data)`` in pieces, the list field ``split`` one element at a time.

    Same bytes as ``canonical_json``, but a huge list is never dumped or encoded whole, so peak
    memory stays near the output's own size.
    """
    return _iter_json(data, split, pretty=True)


def split_digest(data: BaseModel, split: str, exclude: str,
                 encode_item: Callable[[Any], str] | None = None) -> str:
    """``digest(data, exclude)`` computed piecewise over the list field ``split`` (same value).

    ``encode_item`` (default: ``compact_json``) must return an item's compact JSON; it is called
    once per item, in order.
    """
    sha = hashlib.sha256()
    for piece in _iter_json(data, split, pretty=False, exclude=exclude, encode_item=encode_item):
        sha.update(piece.encode("utf-8"))
    return sha.hexdigest()


def _iter_json(data: BaseModel, split: str, pretty: bool, exclude: str | None = None,
               encode_item: Callable[[Any], str] | None = None) -> Iterator[str]:
    # Nesting a dumped value is adding indentation after each newline: JSON text never holds a
    # raw newline (strings escape it).
    top = data.model_dump(mode="json", by_alias=True, exclude={split} | ({exclude} if exclude else set()))
    items = getattr(data, split)
    top[split] = None  # placeholder: the split key's sorted position
    keys = sorted(top)
    newline, indent1, indent2 = ("\n", "\n  ", "\n    ") if pretty else ("", "", "")
    yield "{"
    for i, key in enumerate(keys):
        comma = "," if i < len(keys) - 1 else ""
        head = f"{indent1}{json.dumps(key, ensure_ascii=False)}:{' ' if pretty else ''}"
        if key == split and items:
            yield head + "["
            for j, item in enumerate(items):
                text = encode_item(item) if encode_item is not None else _dump(_plain(item), 4, pretty)
                yield indent2 + text + ("," if j < len(items) - 1 else "")
            yield f"{indent1}]{comma}"
        else:
            yield head + _dump([] if key == split else top[key], 2, pretty) + comma
    yield f"{newline}}}{newline}"


def _dump(value: Any, depth: int, pretty: bool) -> str:
    if not pretty:
        return compact_json(value)
    text = json.dumps(value, sort_keys=True, indent=2, ensure_ascii=False, allow_nan=False)
    return text.replace("\n", "\n" + " " * depth)


def compact_json(data: Any) -> str:
    """Sorted keys, no whitespace, UTF-8 kept."""
    return json.dumps(_plain(data), sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def digest(data: Any, exclude: str | None = None) -> str:
    """sha256 hex of the compact canonical JSON of ``data``, without the top-level key ``exclude``."""
    data = _plain(data)
    if exclude is not None:
        data = {k: v for k, v in data.items() if k != exclude}
    return hashlib.sha256(compact_json(data).encode("utf-8")).hexdigest()
