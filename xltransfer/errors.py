"""Errors a user can act on. The CLI turns each into one clear line and exit code 2."""

from __future__ import annotations

from pathlib import Path


class XltError(Exception):
    """Base class: bad input the user can fix (exit code 2)."""


class GridError(XltError):
    """A grid field is wrong; ``field`` is its dotted path in the grid file."""

    def __init__(self, field: str, message: str, source: Path | str | None = None):
        self.field = field
        self.source = source
        where = f"{source}: " if source else ""
        super().__init__(f"{where}field '{field}': {message}")


class DataFormatError(XltError):
    """A data file is malformed; names the file and the 1-based line."""

    def __init__(self, path: Path | str, line: int | None, message: str):
        self.path = Path(path)
        self.line = line
        at = f":{line}" if line is not None else ""
        super().__init__(f"{path}{at}: {message}")


class UnknownNameError(XltError):
    """An unknown registry name, with close matches to help the user."""


class BackboneUnavailable(XltError):
    """The backbone cannot be loaded (typically: a hub id while offline)."""


class StoreError(XltError):
    """The results store or the working directory cannot be read or written (corrupt, truncated,
    read-only, a file where a folder belongs, a full disk); names the path."""

    def __init__(self, path: Path | str, message: str):
        self.path = Path(path)
        super().__init__(f"{path}: {message}")
