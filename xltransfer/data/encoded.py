"""A labelled split's training features on disk: encoded a chunk of examples at a time by the task's
own ``encode`` and written, a pickled feature dict per row, into a memory-mapped Arrow file that
training reads by index (``train.rows``) like the MLM blocks and MT features of ``corpus``.

MultiNLI's 393K training pairs (BAD-X's NLI task adapters), encoded at 128 tokens as Python lists,
hold several GB; on disk they hold one Arrow file and a row at a time. The features are the same
objects ``encode`` returns (``encode`` works example by example, ``Task.encode``), in the same order,
so training reads the same batches. They are written per run into a folder the run removes at its
end: encoding labelled data takes seconds to minutes, and a cache kept across runs would have to
follow every change to a task's ``encode``.
"""

from __future__ import annotations

import os
import pickle
import shutil
import socket
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from xltransfer.data.corpus import WRITE_ROWS, RowsOnDisk


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
        return pickle.loads(self._rows[index].as_py())

    def take(self, indices: Sequence[int]) -> list[dict[str, Any]]:
        """Several rows at once (one Arrow gather)."""
        return [pickle.loads(row) for row in self._rows.take(list(indices)).to_pylist()]


def encode_to_disk(
    examples: Sequence[Any], encode: Callable[[list[Any]], list[dict[str, Any]]], path: Path
) -> EncodedRows:
    """``encode`` over ``examples``, WRITE_ROWS at a time, into the Arrow file ``path``."""
    import pyarrow as pa
    from datasets.arrow_writer import ArrowWriter
    from datasets.features import Features, Value

    def chunks() -> Iterator[list[dict[str, Any]]]:
        for start in range(0, len(examples), WRITE_ROWS):
            features = encode(list(examples[start : start + WRITE_ROWS]))
            if len(features) != min(WRITE_ROWS, len(examples) - start):
                raise ValueError(f"encode gave {len(features)} features for a chunk of examples: one each")
            yield features

    path.parent.mkdir(parents=True, exist_ok=True)
    schema = Features({"row": Value("binary"), "length": Value("int32")})
    with ArrowWriter(path=str(path), features=schema) as writer:
        for features in chunks():
            rows = [pickle.dumps(f, protocol=pickle.HIGHEST_PROTOCOL) for f in features]
            lengths = [row_length(f) for f in features]
            writer.write_table(
                pa.table({"row": pa.array(rows, pa.binary()), "length": pa.array(lengths, pa.int32())})
            )
        writer.finalize()
    return EncodedRows(path)


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
