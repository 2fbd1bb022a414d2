"""Reading a data file a line at a time: UTF-8 (a byte-order mark is not part of the first line), a
byte that is not UTF-8 reported with its file and line, a file that gives nothing refused by name."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TypeVar

from xltransfer.errors import DataFormatError

T = TypeVar("T")


def utf8_lines(path: Path, newline: str | None = None) -> Iterator[str]:
    """The file's lines, ends kept, as ``open(..., newline=newline)`` splits them, read as they are
    asked for (the file is opened at the first)."""
    with open(path, encoding="utf-8-sig", newline=newline) as handle:
        number = 0
        while True:
            try:
                line = handle.readline()
            except UnicodeDecodeError as err:
                raise DataFormatError(path, number + 1, f"not UTF-8 ({err})") from err
            if not line:
                return
            number += 1
            yield line


def at_least_one(items: Iterable[T], path: Path, what: str) -> Iterator[T]:
    """``items`` as they come; a DataFormatError "no <what>" naming ``path`` if there was none."""
    found = False
    for item in items:
        found = True
        yield item
    if not found:
        raise DataFormatError(path, None, f"no {what}")
