"""A labelled split on disk, for one run: its training features, encoded a chunk of examples at a
time by the task's own ``encode`` and written, a pickled feature dict per row, into a memory-mapped
Arrow file that training reads by index (``train.rows``) like the MLM blocks and MT features of
``corpus``; and its train examples as the task's reader parses them (UD sentences, NLI pairs, BIO
sentences), streamed a row each into a file of their own and read by index the same way.

MultiNLI's 393K training pairs (BAD-X's NLI task adapters), encoded at 128 tokens as Python lists,
hold several GB, and the parsed pairs themselves a few hundred MB; on disk they hold two Arrow files
and a row at a time. The features are the same objects ``encode`` returns (``encode`` works example
by example, ``Task.encode``), in the same order, so training reads the same batches. They are
written per run into a folder the run removes at its end: reading and encoding labelled data takes
seconds to minutes, and a cache kept across runs would have to follow every change to a task's
reader and ``encode``.
"""

from __future__ import annotations

import itertools
import os
import pickle
import shutil
import socket
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

from xltransfer.data.corpus import WRITE_ROWS, RowsOnDisk, row_index

# parsed examples written to disk at a time: a UD sentence keeps its CoNLL-U lines, several KB
EXAMPLE_ROWS = 1_000


def row_length(feature: dict[str, Any]) -> int:
    """What length-bucketed batching sorts by: the input's tokens, or the labels' where they are a
    longer sequence (MT's targets; token batches count the longer of the two, as fairseq does)."""
    labels = feature.get("labels")
    return max(len(feature["input_ids"]), len(labels) if isinstance(labels, list) else 0)


class EncodedRows(RowsOnDisk):
    """Feature dicts pickled row by row in a memory-mapped Arrow file, with each row's ``lengths``."""

    what = "feature"

    def __init__(self, path: Path):
        import datasets

        data = datasets.Dataset.from_file(str(path))
        self.path = Path(path)
        self._rows = data.data.column("row")
        self.lengths = data.data.column("length").to_numpy()

    def _row(self, index: int) -> dict[str, Any]:
        return _unpickled(self._rows, [index])[0]

    def take(self, indices: Sequence[int]) -> list[dict[str, Any]]:
        """Several rows at once (one Arrow gather)."""
        return _unpickled(self._rows, indices)


def encode_to_disk(
    examples: Sequence[Any], encode: Callable[[list[Any]], list[dict[str, Any]]], path: Path
) -> EncodedRows:
    """``encode`` over ``examples``, WRITE_ROWS at a time, into the Arrow file ``path``."""

    def tables() -> Iterator[dict[str, list]]:
        for start in range(0, len(examples), WRITE_ROWS):
            features = encode(list(examples[start : start + WRITE_ROWS]))
            if len(features) != min(WRITE_ROWS, len(examples) - start):
                raise ValueError(f"encode gave {len(features)} features for a chunk of examples: one each")
            yield {"row": [_pickled(f) for f in features], "length": [row_length(f) for f in features]}

    _write_rows(path, tables(), {"row": "binary", "length": "int32"})
    return EncodedRows(path)


class ExamplesOnDisk(Sequence):
    """A split's examples pickled row by row in a memory-mapped Arrow file, indexed, sliced and
    iterated as a list is; ``subset`` is a view of some of them, in the order given."""

    def __init__(self, path: Path, positions: Sequence[int] | None = None):
        import datasets

        self.path = Path(path)
        self._rows = datasets.Dataset.from_file(str(path)).data.column("row")
        self._positions = None if positions is None else list(positions)

    def __len__(self) -> int:
        return len(self._rows) if self._positions is None else len(self._positions)

    def __getitem__(self, index):
        if isinstance(index, slice):
            return self.take(range(*index.indices(len(self))))
        return self.take([row_index(index, len(self), "example")])[0]

    def __iter__(self) -> Iterator[Any]:
        for start in range(0, len(self), WRITE_ROWS):
            yield from self.take(range(start, min(len(self), start + WRITE_ROWS)))

    def _row(self, index: int) -> int:
        return index if self._positions is None else self._positions[index]

    def take(self, indices: Sequence[int]) -> list[Any]:
        """Several examples at once (one Arrow gather)."""
        return _unpickled(self._rows, [self._row(i) for i in indices])

    def subset(self, indices: Sequence[int]) -> ExamplesOnDisk:
        return ExamplesOnDisk(self.path, [self._row(i) for i in indices])


def examples_to_disk(examples: Iterable[Any], path: Path) -> ExamplesOnDisk:
    """``examples`` (a reader's stream) pickled into the Arrow file ``path``, EXAMPLE_ROWS at a time."""
    stream = iter(examples)
    chunks = iter(lambda: list(itertools.islice(stream, EXAMPLE_ROWS)), [])
    tables = ({"row": [_pickled(e) for e in chunk]} for chunk in chunks)
    _write_rows(path, tables, {"row": "binary"})
    return ExamplesOnDisk(path)


def subset(examples: Sequence[Any], indices: Sequence[int]) -> Sequence[Any]:
    """Some of ``examples``, in the order given: a view of examples on disk, else a list."""
    if isinstance(examples, ExamplesOnDisk):
        return examples.subset(indices)
    return [examples[i] for i in indices]


def _pickled(value: Any) -> bytes:
    return pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)


def _unpickled(rows, indices: Sequence[int]) -> list[Any]:
    """The values pickled at ``indices`` of the Arrow column ``rows`` (one gather)."""
    return [pickle.loads(row) for row in rows.take(list(indices)).to_pylist()]


def _write_rows(path: Path, tables: Iterable[dict[str, list]], columns: dict[str, str]) -> None:
    """Each of ``tables`` (column name -> values) appended to the Arrow file ``path`` (an empty
    file still has its columns)."""
    import pyarrow as pa
    from datasets.arrow_writer import ArrowWriter
    from datasets.features import Features, Value

    types = {"binary": pa.binary(), "int32": pa.int32()}
    path.parent.mkdir(parents=True, exist_ok=True)
    written = False
    with ArrowWriter(path=str(path), features=Features({n: Value(t) for n, t in columns.items()})) as writer:
        for table in tables:
            writer.write_table(pa.table({n: pa.array(table[n], types[t]) for n, t in columns.items()}))
            written = True
        if not written:
            writer.write_table(pa.table({n: pa.array([], types[t]) for n, t in columns.items()}))
        writer.finalize()


def run_folder_prefix() -> str:
    """A run's folder of features is named after its machine and process: ``<host>-<pid>-``."""
    return f"{socket.gethostname()}-{os.getpid()}-"


def remove_orphans(root: Path) -> None:
    """Remove the folders of runs on this machine whose process is gone (killed before it could
    remove its own); other machines' (a data cache shared over a network) are theirs to remove."""
    host = f"{socket.gethostname()}-"
    for folder in root.glob(f"{host}*-*"):
        pid = folder.name[len(host) :].split("-", 1)[0]
        if pid.isdigit() and not _alive(int(pid)):
            shutil.rmtree(folder, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True
