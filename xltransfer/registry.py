"""Method and task registries, filled from entry points.

A third-party package adds a method by declaring an entry point in the group
``xltransfer.methods`` (or ``xltransfer.tasks``) that points at its class; nothing in the
harness changes. Entries are loaded lazily, so ``xlt list`` does not import torch.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterator
from importlib.metadata import EntryPoint, entry_points
from typing import Generic, TypeVar

from xltransfer.errors import UnknownNameError

T = TypeVar("T")


class Registry(Generic[T]):
    """Name -> lazily imported object, one registration per name."""

    def __init__(self, kind: str, group: str):
        self.kind = kind
        self.group = group
        self._entries: dict[str, EntryPoint | T] | None = None
        self._distributions: dict[str, tuple[str, str]] = {}  # name -> (package, version)

    def _load_entries(self) -> dict[str, EntryPoint | T]:
        if self._entries is None:
            self._entries = {}
            for ep in entry_points(group=self.group):
                if ep.name in self._entries:
                    raise RuntimeError(f"{self.kind} '{ep.name}' is registered twice ({ep.value})")
                self._entries[ep.name] = ep
                if ep.dist is not None:
                    self._distributions[ep.name] = (ep.dist.name, ep.dist.version)
        return self._entries

    def distribution(self, name: str) -> tuple[str, str] | None:
        """The installed package (name, version) that registers ``name``; None when registered
        in-process. Provenance records it: a plugin's version moves its numbers."""
        self._load_entries()
        return self._distributions.get(name)

    def register(self, name: str, obj: T) -> None:
        """Register in-process (tests, notebooks); packages use entry points instead."""
        entries = self._load_entries()
        if name in entries:
            raise ValueError(f"{self.kind} '{name}' is already registered")
        entries[name] = obj

    def unregister(self, name: str) -> None:
        self._load_entries().pop(name, None)

    def names(self) -> list[str]:
        return sorted(self._load_entries())

    def __contains__(self, name: object) -> bool:
        return name in self._load_entries()

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def origin(self, name: str) -> str:
        """Where an entry comes from ("module:object"), for `xlt list`."""
        entry = self._load_entries()[name]
        if isinstance(entry, EntryPoint):
            return entry.value
        return f"{getattr(entry, '__module__', '?')}:{getattr(entry, '__qualname__', entry)}"

    def get(self, name: str) -> T:
        entries = self._load_entries()
        if name not in entries:
            raise UnknownNameError(self.unknown_message(name))
        entry = entries[name]
        if isinstance(entry, EntryPoint):
            entry = entry.load()
            entries[name] = entry
        return entry  # type: ignore[return-value]

    def unknown_message(self, name: str) -> str:
        close = difflib.get_close_matches(name, self.names(), n=3)
        hint = f"; did you mean {', '.join(repr(c) for c in close)}?" if close else ""
        return f"unknown {self.kind} '{name}'{hint} (known: {', '.join(self.names()) or 'none'})"


methods: Registry = Registry("method", "xltransfer.methods")
tasks: Registry = Registry("task", "xltransfer.tasks")
