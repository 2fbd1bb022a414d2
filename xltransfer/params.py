"""Frozen, hashable hyper-parameter mappings and stable hashing of what determines a result."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Mapping
from typing import Any


class Params(Mapping[str, Any]):
    """An immutable mapping with a canonical JSON form, so it can key artifacts and cells."""

    __slots__ = ("_data", "_json")

    def __init__(self, data: Mapping[str, Any] | None = None, **kwargs: Any):
        merged = {**(data or {}), **kwargs}
        self._data = {k: _freeze(v) for k, v in sorted(merged.items())}
        self._json = canonical_json(self._data)

    def __getitem__(self, key: str) -> Any:
        return self._data[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)

    def __hash__(self) -> int:
        return hash(self._json)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Params) and other._json == self._json

    def __repr__(self) -> str:
        return f"Params({self._json})"

    def updated(self, **changes: Any) -> Params:
        return Params({**self._data, **changes})

    def to_dict(self) -> dict[str, Any]:
        return json.loads(self._json)


def _freeze(value: Any) -> Any:
    if isinstance(value, Mapping):
        return Params(value)
    if isinstance(value, list | tuple):
        return tuple(_freeze(v) for v in value)
    return value


def _default(value: Any) -> Any:
    if isinstance(value, Params):
        return value._data
    if isinstance(value, tuple | set | frozenset):
        return list(value)
    raise TypeError(f"not JSON-serialisable: {value!r}")


def canonical_json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=_default)


def stable_hash(value: Any, length: int = 64) -> str:
    return hashlib.sha256(canonical_json(value).encode()).hexdigest()[:length]
