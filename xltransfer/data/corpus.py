"""Unlabelled text on disk: a corpus is read once into a memory-mapped Arrow file, tokenised (and
packed into MLM blocks) once per tokenizer and length, and read by index from then on.

Memory stays flat in the size of the corpus: nothing here holds a whole corpus as Python objects.
Both steps are folders of ``cached_folder`` (staging + rename, sha256-verified) under the data cache
(``<workdir>/cache/data``, or ``XLT_DATA_CACHE`` to share one across workdirs), keyed by the
corpus's fingerprint (and the tokenizer, ``max_length``, packing): a second piece or a second run
reading the same corpus prepares nothing.
"""

from __future__ import annotations

import hashlib
import os
import random
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from xltransfer.cached_folder import cached_folder

DATA_CACHE_ENV = "XLT_DATA_CACHE"
# bumped when what a prepared folder holds changes for the same inputs
PREP_VERSION = 1
WRITE_ROWS = 10_000  # lines (or blocks) written to Arrow at a time
PROC_ROWS = 50_000  # a tokenising process per this many lines, up to the CPUs there are

# The held-out MLM set that selects a language-side adapter's checkpoint. The authors evaluate on
# the first 5% of the target's text file (parovicm/badx examples/language-modeling/run_bi_mlm.py:
# `validation[:{validation_split_percentage}%]`, default 5, `max_eval_samples` unset); here it is
# 5% of the sentences, at least one, at most a cap, a contiguous slice at a fixed seeded offset. The
# cap is a grid parameter (a data source's `held_out_sentences`); its default, HELD_OUT_CAP, is ours:
# the authors set none, and 5% of a whole Wikipedia, evaluated every 500 steps, would cost more than
# the training; under it, a corpus of up to 200K sentences keeps the authors' 5%.
HELD_OUT_FRACTION = 0.05
HELD_OUT_CAP = 10_000
HELD_OUT_SEED = 0
MIN_HELD_OUT_LINES = 2  # one sentence to train on, one to select on


def row_index(index: int, length: int, what: str) -> int:
    """A list-style index (negative from the end) of a table on disk, checked like a list's."""
    if index < 0:
        index += length
    if not 0 <= index < length:
        raise IndexError(f"{what} index out of range")
    return index


def data_cache_root(workspace_cache: Path) -> Path:
    """Where prepared data lives: ``XLT_DATA_CACHE`` if set (shared by workdirs), else the workdir's."""
    shared = os.environ.get(DATA_CACHE_ENV)
    return Path(shared) if shared else Path(workspace_cache) / "data"


def _digest(*parts: Any) -> str:
    return hashlib.sha256("\x1f".join(map(str, parts)).encode("utf-8")).hexdigest()[:32]


def prep_key(kind: str, *parts: Any) -> str:
    """The cache key of a prepared folder of ``kind`` made from ``parts`` (what decides its bytes)."""
    return _digest(kind, PREP_VERSION, *parts)


# -- what preparing cost, per piece -------------------------------------------------------------------
@dataclass
class PrepLedger:
    """Seconds spent preparing data, charged to the piece that needed it: preparation done while no
    piece runs (the run's up-front read of every file) goes to the first piece that reads the corpus."""

    unclaimed: dict[str, float] = field(default_factory=dict)
    _tally: list[tuple[float, bool]] | None = None  # (seconds, prepared before the piece began)

    def built(self, key: str, seconds: float) -> None:
        """``key``: the corpus's fingerprint (what ``used`` is told when a piece reads it)."""
        if self._tally is not None:
            self._tally.append((seconds, False))
        else:
            self.unclaimed[key] = self.unclaimed.get(key, 0.0) + seconds

    def used(self, key: str) -> None:
        if self._tally is not None and key in self.unclaimed:
            self._tally.append((self.unclaimed.pop(key), True))

    @contextmanager
    def piece(self) -> Iterator[dict[str, Any]]:
        """Within: preparation is the piece's; the dict yielded gets ``data_prep_seconds`` and
        ``data_cached`` (nothing prepared for it) when the block ends, and ``earlier_seconds``: the
        part prepared before the piece began (the run's up-front read), outside its own wall time."""
        outer, self._tally = self._tally, []
        result: dict[str, Any] = {}
        try:
            yield result
        finally:
            tally, self._tally = self._tally, outer
            result["data_prep_seconds"] = round(sum(s for s, _ in tally), 3)
            result["data_cached"] = not tally
            result["earlier_seconds"] = sum(s for s, earlier in tally if earlier)


# -- text ----------------------------------------------------------------------------------------------
class TextCorpus(Sequence):
    """A corpus's lines (sentences) in a memory-mapped Arrow file, or some ranges of them."""

    def __init__(self, folder: Path, fingerprint: str, ledger: PrepLedger, ranges=None, what: str = ""):
        import datasets

        self.folder = Path(folder)
        self.fingerprint = fingerprint
        self.ledger = ledger
        self.what = what
        self._data = datasets.Dataset.from_file(str(self.folder / "text.arrow"))
        self.ranges: tuple[tuple[int, int], ...] = tuple(ranges) if ranges else ((0, len(self._data)),)

    @property
    def key(self) -> str:
        """Names the lines this view holds (its corpus and ranges)."""
        return _digest(self.fingerprint, self.ranges)

    @property
    def cache_root(self) -> Path:
        return self.folder.parent.parent

    def __len__(self) -> int:
        return sum(b - a for a, b in self.ranges)

    def _position(self, index: int) -> int:
        if index < 0:
            index += len(self)
        for a, b in self.ranges:
            if index < b - a:
                return a + index
            index -= b - a
        raise IndexError("corpus index out of range")

    def __getitem__(self, index):
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self)))]
        return self._data.data.column("text")[self._position(index)].as_py()

    def __iter__(self) -> Iterator[str]:
        for chunk in self.text_chunks():
            yield from chunk

    def text_chunks(self, rows: int = WRITE_ROWS) -> Iterator[list[str]]:
        column = self._data.data.column("text")
        for a, b in self.ranges:
            for start in range(a, b, rows):
                yield column.slice(start, min(rows, b - start)).to_pylist()

    def view(self, ranges: Iterable[tuple[int, int]]) -> TextCorpus:
        """The lines of ``ranges`` (positions in this view), as a corpus of its own."""
        absolute = []
        for a, b in ranges:
            if b > a:
                absolute.extend(self._absolute(a, b))
        view = TextCorpus.__new__(TextCorpus)
        view.__dict__.update(self.__dict__)
        view.ranges = tuple(absolute)
        return view

    def _absolute(self, a: int, b: int) -> list[tuple[int, int]]:
        out, offset = [], 0
        for lo, hi in self.ranges:
            size = hi - lo
            start, stop = max(a - offset, 0), min(b - offset, size)
            if start < stop:
                out.append((lo + start, lo + stop))
            offset += size
        return out

    def dataset(self):
        """The view as a ``datasets.Dataset`` (contiguous selections: no index mapping)."""
        import datasets

        parts = [self._data.select(range(a, b)) for a, b in self.ranges]
        return parts[0] if len(parts) == 1 else datasets.concatenate_datasets(parts)


def read_text(
    lines: Callable[[], Iterable[str]], fingerprint: str, cache_root: Path, ledger: PrepLedger, what: str
) -> TextCorpus:
    """The corpus ``lines()`` yields, read once into ``cache_root/text/<fingerprint's hash>``."""
    key = _digest("text", PREP_VERSION, fingerprint)

    def build(staging: Path) -> None:
        started = time.perf_counter()
        write_strings(staging / "text.arrow", ("text",), ((line,) for line in lines()))
        ledger.built(fingerprint, time.perf_counter() - started)

    folder = cached_folder(Path(cache_root) / "text", key, build, what=f"text of {what}")
    return TextCorpus(folder, fingerprint, ledger, what=what)


def write_strings(path: Path, columns: Sequence[str], rows: Iterable[Sequence[str]]) -> int:
    """``rows`` (a tuple of strings per row, one per column) streamed into the Arrow file ``path``,
    WRITE_ROWS at a time; the number of rows written."""
    import pyarrow as pa
    from datasets.arrow_writer import ArrowWriter
    from datasets.features import Features, Value

    features = Features({name: Value("string") for name in columns})
    written = 0
    with ArrowWriter(path=str(path), features=features) as writer:
        batch: list[Sequence[str]] = []

        def flush() -> None:
            table = {name: pa.array([row[i] for row in batch], pa.string()) for i, name in enumerate(columns)}
            writer.write_table(pa.table(table))

        for row in rows:
            batch.append(row)
            if len(batch) == WRITE_ROWS:
                flush()
                written += len(batch)
                batch = []
        if batch:
            flush()
            written += len(batch)
        writer.finalize()
    return written


def held_out_ranges(
    size: int, cap: int | None, held_out: int = HELD_OUT_CAP
) -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:
    """(train ranges, held-out ranges) of a corpus of ``size`` lines. Under a source's cap of N
    sentences (Hyper-X's 100K, §4) the first N are trained on and the held-out lines are those read
    after them; otherwise a contiguous HELD_OUT_FRACTION (at least one line, at most ``held_out``, the
    source's ``held_out_sentences``) at an offset fixed by HELD_OUT_SEED and the size, the rest
    trained on."""
    if cap is not None and size > cap:
        return [(0, cap)], [(cap, min(size, cap + held_out))]
    count = max(1, min(held_out, int(size * HELD_OUT_FRACTION)))
    start = random.Random(f"{HELD_OUT_SEED}:{size}").randrange(size - count + 1)
    return [(0, start), (start + count, size)], [(start, start + count)]


# -- tokens --------------------------------------------------------------------------------------------
class RowsOnDisk(Sequence):
    """Rows of a table on disk, each with a ``length`` (what length-bucketed batching reads), indexed
    and sliced as a list is; a subclass reads one row (``_row``) and, for ``train.rows``, several at
    once (``take``)."""

    lengths: np.ndarray
    what = "row"  # for the message of an index out of range

    def __len__(self) -> int:
        return len(self.lengths)

    def __getitem__(self, index):
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self)))]
        return self._row(row_index(index, len(self), self.what))

    def _row(self, index: int) -> dict[str, Any]:
        raise NotImplementedError


class TokenBlocks(RowsOnDisk):
    """Token sequences (``{"input_ids": [...]}`` per item, or one list per name of ``columns``) in
    memory-mapped Arrow files, with each item's ``length`` (what length-bucketed batching reads)."""

    def __init__(self, folder: Path, columns: Sequence[str] = ("input_ids",)):
        import datasets

        files = sorted(Path(folder).glob("*.arrow"))
        parts = [datasets.Dataset.from_file(str(f)) for f in files]
        data = parts[0] if len(parts) == 1 else datasets.concatenate_datasets(parts)
        self.folder = Path(folder)
        self.columns = tuple(columns)
        self._columns = [data.data.column(name) for name in self.columns]
        self.lengths = data.data.column("length").to_numpy()

    what = "token sequence"

    def _row(self, index: int) -> dict[str, Any]:
        return {name: column[index].as_py() for name, column in zip(self.columns, self._columns, strict=True)}

    def take(self, indices: Sequence[int]) -> list[dict[str, list[int]]]:
        """Several items at once (one Arrow gather per column)."""
        indices = list(indices)
        values = [column.take(indices).to_pylist() for column in self._columns]
        return [dict(zip(self.columns, row, strict=True)) for row in zip(*values, strict=True)]


def tokenizer_fingerprint(tokenizer) -> str:
    """What identifies a tokenizer's output: its serialised pipeline (a fast tokenizer's JSON) and
    special tokens; computed once per tokenizer object."""
    cached = getattr(tokenizer, "_xlt_fingerprint", None)
    if cached is not None:
        return cached
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is not None:
        body = backend.to_str()
    else:
        from datasets.fingerprint import Hasher

        body = Hasher.hash(tokenizer)
    value = _digest(type(tokenizer).__name__, body, tokenizer.all_special_ids, tokenizer.cls_token_id)
    try:
        tokenizer._xlt_fingerprint = value
    except AttributeError:
        pass
    return value


def processes(rows: int) -> int:
    """Tokenising processes for ``rows`` lines: one per PROC_ROWS, at most the CPUs available."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:
        cpus = os.cpu_count() or 1
    return max(1, min(cpus, rows // PROC_ROWS))


def tokenized(
    corpus: TextCorpus, tokenizer, max_length: int, packed: bool, line_markers: bool = False
) -> TokenBlocks:
    """The corpus's MLM examples: one per line truncated to ``max_length`` (Hyper-X), or (``packed``)
    the text concatenated and cut into ``max_length`` blocks, each between the sentence markers or
    (``line_markers``) each line keeping its own (``packing_markers``), prepared once per (corpus
    lines, tokenizer, max_length, packing)."""
    if packed:
        packing_markers(tokenizer, max_length, line_markers)
    lines = ("line-markers",) if packed and line_markers else ()
    key = _digest(
        "tokens", PREP_VERSION, corpus.key, tokenizer_fingerprint(tokenizer), max_length, packed, *lines
    )

    def build(staging: Path) -> None:
        started = time.perf_counter()
        data = corpus.dataset()
        if packed:
            tokens = _map_tokens(data, tokenizer, staging / ".tokens" / "tokens.arrow", None, line_markers)
            _write_blocks(tokens, tokenizer, max_length, line_markers, staging / "blocks.arrow")
            import shutil

            del tokens
            shutil.rmtree(staging / ".tokens")
        else:
            _map_tokens(data, tokenizer, staging / "tokens.arrow", max_length)
        corpus.ledger.built(key, time.perf_counter() - started)

    what = (
        f"{'packed ' if packed else ''}tokens of {corpus.what or corpus.fingerprint}, max_length {max_length}"
    )
    return TokenBlocks(cached_folder(corpus.cache_root / "tokens", key, build, what=what))


def _map_tokens(data, tokenizer, path: Path, max_length: int | None, markers: bool = True):
    """``data``'s "text" tokenised by ``Dataset.map(batched=True, num_proc=…)`` into ``path``: with
    the sentence markers, truncated to ``max_length``; or (None) whole, for packing, with the
    markers or (``markers`` false) bare."""
    from datasets.features import Features, Sequence, Value

    features = Features({"input_ids": Sequence(Value("int32")), "length": Value("int32")})
    return map_rows(data, _Tokenise(tokenizer, max_length, markers), features, path)


def map_rows(data, function: Callable[[dict[str, list]], dict[str, list]], features, path: Path):
    """``function`` (a picklable batched map function, which may drop rows) over ``data`` by
    ``Dataset.map(batched=True, num_proc=…)`` into the Arrow file ``path`` (``data``'s columns
    replaced by ``features``); a progress bar for long inputs only."""
    from datasets import utils as bars

    path.parent.mkdir(parents=True, exist_ok=True)
    quiet = len(data) < PROC_ROWS and not bars.are_progress_bars_disabled()
    if quiet:
        bars.disable_progress_bars()
    try:
        return data.map(
            function,
            batched=True,
            batch_size=1000,
            num_proc=processes(len(data)) if len(data) >= 2 * PROC_ROWS else None,
            remove_columns=list(data.column_names),
            features=features,
            cache_file_name=str(path),
            load_from_cache_file=False,
            new_fingerprint=_digest("map", path.parent.name, path.name),
            desc="tokenising",
        )
    finally:
        if quiet:
            bars.enable_progress_bars()


class _Tokenise:
    """The map function (a class: picklable for the worker processes)."""

    def __init__(self, tokenizer, max_length: int | None, markers: bool = True):
        self.tokenizer, self.max_length, self.markers = tokenizer, max_length, markers

    def __call__(self, batch: dict[str, list]) -> dict[str, list]:
        if self.max_length is None:
            ids = self.tokenizer(batch["text"], add_special_tokens=self.markers)["input_ids"]
        else:
            ids = self.tokenizer(batch["text"], truncation=True, max_length=self.max_length)["input_ids"]
        return {"input_ids": ids, "length": [len(x) for x in ids]}


def pack(chunks: Iterable[np.ndarray], size: int) -> Iterator[np.ndarray]:
    """The token stream (given in chunks) cut into rows of ``size`` tokens, as 2-D arrays; the last,
    shorter block is dropped as run_mlm.py's group_texts drops it, unless it is the only one."""
    carry = np.zeros(0, dtype=np.int64)
    wrote = False
    for chunk in chunks:
        stream = np.concatenate([carry, np.asarray(chunk, dtype=np.int64)])
        whole = len(stream) // size * size
        if whole:
            wrote = True
            yield stream[:whole].reshape(-1, size)
        carry = stream[whole:]
    if not wrote and len(carry):
        yield carry.reshape(1, -1)


def packing_markers(tokenizer, max_length: int, line_markers: bool) -> None:
    """Check that ``tokenizer`` can pack MLM text into ``max_length`` blocks. Two ways to place the
    sentence markers ([CLS] … [SEP]; XLM-R's <s> … </s>):

    - each block between them (``line_markers`` false): the text tokenised bare, cut into blocks of
      ``max_length`` - 2; ``transformers``' TextDataset, as CPGAdapters trains MAD-G's generator
      (run_language_modeling.py, block_size);
    - each line keeping its own (``line_markers``): every line tokenised with its markers, the
      sequence cut into blocks of ``max_length``, which start and end mid-line;
      run_mlm.py's group_texts, as parovicm/badx trains its LAs, BAs and MAs (run_bi_mlm.py
      tokenize_function, group_texts) and adapters' examples train MAD-X's."""
    first, last = tokenizer.cls_token_id, tokenizer.sep_token_id
    if first is None or last is None:
        raise ValueError("packing MLM text needs a tokenizer with cls and sep tokens (BERT, XLM-R)")
    if max_length - (0 if line_markers else 2) < 1:
        raise ValueError(f"max_length {max_length} leaves no room between the sentence markers")


def packed_blocks(
    chunks: Iterable[np.ndarray], tokenizer, max_length: int, line_markers: bool
) -> Iterator[np.ndarray]:
    """The tokenised text (given in chunks: bare, or each line with its markers if ``line_markers``)
    as 2-D arrays of ``max_length``-token blocks, placed between the markers as
    ``packing_markers`` says: in memory and on disk alike."""
    if line_markers:
        yield from pack(chunks, max_length)
        return
    for blocks in pack(chunks, max_length - 2):
        rows = blocks.shape[0]
        first, last = tokenizer.cls_token_id, tokenizer.sep_token_id
        yield np.hstack([np.full((rows, 1), first), blocks, np.full((rows, 1), last)])


def _write_blocks(tokens, tokenizer, max_length: int, line_markers: bool, path: Path) -> None:
    """Pack the mapped tokens (read a chunk at a time) into ``path`` (``packed_blocks``)."""
    import pyarrow as pa
    from datasets.arrow_writer import ArrowWriter
    from datasets.features import Features, Sequence, Value

    column = tokens.data.column("input_ids")

    def chunks() -> Iterator[np.ndarray]:
        for start in range(0, len(column), WRITE_ROWS):
            flat = column.slice(start, WRITE_ROWS).combine_chunks().flatten()
            yield flat.to_numpy(zero_copy_only=False)

    features = Features({"input_ids": Sequence(Value("int32")), "length": Value("int32")})
    with ArrowWriter(path=str(path), features=features) as writer:
        for blocks in packed_blocks(chunks(), tokenizer, max_length, line_markers):
            rows = blocks.astype(np.int32)
            width = rows.shape[1]
            for start in range(0, rows.shape[0], WRITE_ROWS):
                part = rows[start : start + WRITE_ROWS]
                offsets = pa.array(np.arange(0, part.size + 1, width, dtype=np.int32))
                ids = pa.ListArray.from_arrays(offsets, pa.array(part.ravel()))
                lengths = pa.array(np.full(part.shape[0], width, dtype=np.int32))
                writer.write_table(pa.table({"input_ids": ids, "length": lengths}))
        writer.finalize()
