"""Canonical JSON and digests: the same plan always serializes to the same bytes."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from pydantic import BaseModel


def canonical_json(data: Any) -> str:
    """Sorted keys, 2-space indent, UTF-8 kept, trailing newline."""
    if isinstance(data, BaseModel):
        data = data.model_dump(mode="json", by_alias=True)
    return json.dumps(data, sort_keys=True, indent=2, ensure_ascii=False) + "\n"


def digest(data: Any, exclude: str | None = None) -> str:
    """sha256 hex of the canonical JSON of ``data``, without the top-level key ``exclude``."""
    if isinstance(data, BaseModel):
        data = data.model_dump(mode="json", by_alias=True)
    if exclude is not None:
        data = {k: v for k, v in data.items() if k != exclude}
    return hashlib.sha256(canonical_json(data).encode("utf-8")).hexdigest()
