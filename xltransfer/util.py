"""Small file helpers: every file the harness writes is written atomically, and files are hashed once."""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

from xltransfer.errors import XltError


def _umask() -> int:
    """The process's umask (reading it means setting it; put back at once)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


# what open() would give a new file: results, reports and predictions are for others to read too
# (mkstemp's own 0600 would hide a rendered leaderboard from a web server or a colleague)
NEW_FILE_MODE = 0o666 & ~_umask()


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write to a temporary file beside ``path``, then rename: readers see the old or the new file."""
    with atomic_path(path) as tmp, open(tmp, "wb") as handle:
        handle.write(data)


@contextmanager
def atomic_path(path: Path) -> Iterator[Path]:
    """A temporary path beside ``path`` for a writer that wants a file name (a task's prediction
    writer, matplotlib); once the block ends without error it is synced and renamed to ``path``
    with a regular file's permissions, else removed."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        with open(tmp, "rb+") as handle:
            os.fsync(handle.fileno())
        os.chmod(tmp, NEW_FILE_MODE)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def sha256_now(path: Path | str) -> str:
    """The file's sha256, read now (no memo: for checks that keep their own)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


@lru_cache(maxsize=4096)
def _sha256(path: str, size: int, mtime_ns: int) -> str:
    return sha256_now(path)


def file_sha256(path: Path) -> str:
    """The file's sha256, computed once per process for a given size and modification time (data
    files key every piece; stored pieces are verified before each use)."""
    stat = Path(path).stat()
    return _sha256(str(Path(path).resolve()), stat.st_size, stat.st_mtime_ns)


# A grid is a few thousand values; aliases let 465 bytes expand to gigabytes ("billion laughs"),
# so a document whose values, aliases expanded, count more than this is refused before it is built.
MAX_YAML_VALUES = 200_000


def load_yaml(text: str) -> Any:
    """``yaml.safe_load`` that refuses a mapping repeating a key (PyYAML keeps the last one
    silently, so a grid saying ``seeds`` twice would run with whichever came last) and a document
    whose aliases expand beyond ``MAX_YAML_VALUES`` values."""
    loader = _UniqueKeyLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        size = _expanded_size(node, {})
        if size > MAX_YAML_VALUES:
            raise yaml.constructor.ConstructorError(
                None, None, f"its aliases expand to over {MAX_YAML_VALUES:,} values", node.start_mark
            )
        return loader.construct_document(node)
    finally:
        loader.dispose()


def _expanded_size(node: yaml.Node, sizes: dict[int, int]) -> int:
    """Values in ``node`` with every alias expanded (each shared node counted once per use)."""
    if id(node) in sizes:
        return sizes[id(node)]
    sizes[id(node)] = 1  # a recursive alias counts once (the constructor builds it as a cycle)
    if isinstance(node, yaml.SequenceNode):
        size = 1 + sum(_expanded_size(child, sizes) for child in node.value)
    elif isinstance(node, yaml.MappingNode):
        size = 1 + sum(_expanded_size(k, sizes) + _expanded_size(v, sizes) for k, v in node.value)
    else:
        size = 1
    sizes[id(node)] = min(size, MAX_YAML_VALUES + 1)
    return sizes[id(node)]


def read_yaml(path: Path) -> Any:
    """A YAML file, or an error naming the file (and the line) that is not UTF-8 or valid YAML."""
    try:
        return load_yaml(Path(path).read_text(encoding="utf-8"))
    except UnicodeDecodeError as err:
        raise XltError(f"{path}: not UTF-8 text ({err.reason} at byte {err.start})") from None
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        line = f":{mark.line + 1}" if mark is not None else ""
        raise XltError(f"{path}{line}: not valid YAML ({getattr(err, 'problem', err)})") from None


def yaml_value(text: str, where: str) -> Any:
    """A value written in YAML on the command line (``--param KEY=VALUE``): plain data only, an
    error naming ``where`` otherwise (a tag such as ``!!python/object``, a syntax error)."""
    try:
        return load_yaml(text)
    except yaml.YAMLError as err:
        raise XltError(f"{where}: not a plain YAML value ({getattr(err, 'problem', None) or err})") from None


class _UniqueKeyLoader(yaml.SafeLoader):
    pass


def _unique_mapping(loader: _UniqueKeyLoader, node: yaml.MappingNode, deep: bool = False) -> dict:
    seen: dict[Any, int] = {}
    for key_node, _ in node.value:
        if key_node.tag == "tag:yaml.org,2002:merge":
            continue  # keys merged in with << may be overridden: that is what merging is for
        key = loader.construct_object(key_node, deep=True)
        try:
            if key in seen:  # on another line, or on the same one: {epochs: 0.2, epochs: 5.0}
                raise yaml.constructor.ConstructorError(
                    None,
                    None,
                    f"key {key!r} appears twice (first on line {seen[key] + 1})",
                    key_node.start_mark,
                )
        except TypeError:  # an unhashable key: the safe loader reports it
            continue
        seen[key] = key_node.start_mark.line
    return loader.construct_mapping(node, deep=deep)


_UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _unique_mapping)
