"""Parallel text for translation: line-aligned files, TSV files and hub datasets, plus the
training-data filters and sampling temperatures of multilingual NMT.

How a data source names parallel data (format ``"parallel"``):

- one file per language and split, line *i* of every file being the same sentence (the synthetic
  suite's ``mt/<split>/<lang>.txt``, ``mt/pud/<lang>.txt``); an ``ids.txt`` beside them names the
  sentences. A direction (source, target) pairs two of these files, so one multi-way corpus gives
  every direction (many-to-many) or only those through a pivot (English-centric);
- or one TSV file per direction, found under the pair's name ``SRC-TGT`` (``files: {en-de:
  {train: en-de.tsv}}``), either ``source<TAB>target`` per line or with a header row whose columns
  are language codes (plus an optional ``id`` column);
- or a hub dataset whose rows hold a ``translation`` dict or one column per language.

Every reader rejects an empty sentence (naming file and line) instead of skipping it: dropping a
line on one side only would silently misalign every later pair.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from xltransfer.data.corpus import row_index
from xltransfer.data.lines import utf8_lines
from xltransfer.errors import DataFormatError
from xltransfer.languages import lookup

IDS_FILE = "ids.txt"
_LINE_BREAK = re.compile(r"\r\n|\r|\n")  # what ends a line in text mode
ID_COLUMN = "id"

# Baziotis et al. 2022, §4 "Data": pairs with more than 250 tokens or a length ratio over 2.5 are
# filtered out after SentencePiece segmentation ("Then, we filter..."), so lengths count subwords.
MAX_TOKENS = 250
MAX_LENGTH_RATIO = 2.5
# Baziotis et al. 2022, §4 "Sampling": T=5 when training SentencePiece, T=2 when training the model.
VOCABULARY_TEMPERATURE = 5.0
TRAINING_TEMPERATURE = 2.0


@dataclass(frozen=True)
class ParallelExample:
    """One translation example; a reference read alone (``xlt evaluate``) has only ``target``."""

    source_lang: str | None
    target_lang: str | None
    source: str | None
    target: str
    id: str

    def reversed(self) -> ParallelExample:
        if self.source is None:
            raise ValueError(f"example {self.id} has no source side to translate into")
        return ParallelExample(self.target_lang, self.source_lang, self.target, self.source, self.id)


# -- plain line files -------------------------------------------------------------------------------


def iter_lines(path: Path, allow_empty: bool = False) -> Iterator[str]:
    """One sentence per line, read as they are asked for, in Python's text mode (so ``\\r\\n`` and
    ``\\r`` end a line, as sacrebleu reads files; U+2028 inside a sentence does not); a UTF-8
    byte-order mark is not part of the first sentence. An empty line is an error unless
    ``allow_empty`` (a system's output)."""
    for number, line in enumerate(utf8_lines(path), start=1):
        text = line[:-1] if line.endswith("\n") else line
        if not allow_empty and not text.strip():
            raise DataFormatError(path, number, "empty line (every line must hold one sentence)")
        yield text


def read_lines(path: Path, allow_empty: bool = False) -> list[str]:
    return list(iter_lines(path, allow_empty))


def write_lines(path: Path, lines: Iterable[str]) -> None:
    """One line per sentence; a line break inside a sentence becomes a space so lines stay aligned."""
    Path(path).write_text("".join(_LINE_BREAK.sub(" ", line) + "\n" for line in lines), encoding="utf-8")


def read_references(path: Path) -> list[ParallelExample]:
    """A reference file (one sentence per line) as examples that have only a target side."""
    return [
        ParallelExample(None, None, None, line, str(number))
        for number, line in enumerate(read_lines(path), start=1)
    ]


# -- directions and line-aligned files ----------------------------------------------------------


def directions(languages: Sequence[str], pivot: str | None = None) -> list[tuple[str, str]]:
    """Translation directions among ``languages``: all ordered pairs (many-to-many), or with a
    ``pivot`` only those into and out of it (English-centric, as ML50 in Baziotis et al. 2022)."""
    return [(s, t) for s in languages for t in languages if s != t and (pivot is None or pivot in (s, t))]


def direction_unit(source_lang: str, target_lang: str) -> str:
    """How the harness names one direction's data (``en>de``): the unit MT reads and keys."""
    return f"{source_lang}>{target_lang}"


def parse_direction(unit: str) -> tuple[str, str]:
    source_lang, sep, target_lang = unit.partition(">")
    if not sep or not source_lang or not target_lang:
        raise ValueError(f"'{unit}' is not a translation direction (SRC>TGT)")
    return source_lang, target_lang


def grid_directions(sources: Sequence[str], targets: Sequence[str], both_ways: bool) -> list[tuple[str, str]]:
    """Every source -> target (and, ``both_ways``, target -> source), each once, in a stable order."""
    pairs = [(s, t) for s in sources for t in targets if s != t]
    if both_ways:
        pairs += [(t, s) for s, t in pairs]
    return list(dict.fromkeys(pairs))


def iter_multiway(
    files: Mapping[str, Path], pairs: Sequence[tuple[str, str]], ids: Path | None = None
) -> Iterator[ParallelExample]:
    """Examples for each direction from line-aligned files (one per language), direction by direction,
    read a line at a time (a direction of ML50 is never held whole).

    Files of unequal length are an error naming the shorter file: the alignment is unknowable.
    """
    needed = sorted({lang for pair in pairs for lang in pair})
    missing = [lang for lang in needed if lang not in files]
    if missing:
        raise ValueError(f"no file for language(s) {', '.join(missing)}")
    for s, t in pairs:
        paths = [files[s], files[t]] + ([ids] if ids is not None else [])
        for number, row in enumerate(_aligned_lines(paths), start=1):
            sentence_id = row[2] if ids is not None else str(number)
            yield ParallelExample(s, t, row[0], row[1], sentence_id)


def read_multiway(
    files: Mapping[str, Path], pairs: Sequence[tuple[str, str]], ids: Path | None = None
) -> list[ParallelExample]:
    return list(iter_multiway(files, pairs, ids))


def _aligned_lines(paths: Sequence[Path]) -> Iterator[tuple[str, ...]]:
    """Line *i* of every file, for each *i*; where one file ends before another, an error naming it
    (the longer files are counted to the end for the message, not held)."""
    readers = [iter_lines(path) for path in paths]
    count = 0
    while True:
        row = tuple(next(reader, None) for reader in readers)
        if all(line is None for line in row):
            return
        if any(line is None for line in row):
            _check_equal_lengths(
                {
                    path: count if line is None else count + 1 + sum(1 for _ in reader)
                    for path, reader, line in zip(paths, readers, row, strict=True)
                }
            )
        count += 1
        yield row  # type: ignore[misc]


def _check_equal_lengths(line_counts: Mapping[Path, int]) -> None:
    longest = max(line_counts, key=lambda p: line_counts[p])
    for path, count in line_counts.items():
        if count < line_counts[longest]:
            raise DataFormatError(
                path,
                None,
                f"{count} lines, but the aligned file {longest} has {line_counts[longest]}: "
                "parallel files must have one line per sentence",
            )


def iter_aligned(
    source_path: Path, target_path: Path, source_lang: str, target_lang: str, ids: Path | None = None
) -> Iterator[ParallelExample]:
    """One direction from a pair of line-aligned files."""
    return iter_multiway(
        {source_lang: source_path, target_lang: target_path}, [(source_lang, target_lang)], ids
    )


def read_aligned(
    source_path: Path, target_path: Path, source_lang: str, target_lang: str, ids: Path | None = None
) -> list[ParallelExample]:
    return list(iter_aligned(source_path, target_path, source_lang, target_lang, ids))


def ids_beside(path: Path) -> Path | None:
    """The ``ids.txt`` in the folder of a line-aligned file, when there is one."""
    candidate = Path(path).parent / IDS_FILE
    return candidate if candidate.is_file() and candidate != Path(path) else None


# -- TSV ------------------------------------------------------------------------------------------


def languages_from_name(path: Path) -> tuple[str, str] | None:
    """(source, target) from a file named after its direction: ``en-de.tsv``, ``en-de.train.tsv``."""
    parts = Path(path).name.split(".")[0].split("-")
    if len(parts) == 2 and all(lookup(p) is not None for p in parts):
        return parts[0], parts[1]
    return None


def _is_language(cell: str) -> bool:
    return lookup(cell) is not None


def _same_language(a: str, b: str) -> bool:
    la, lb = lookup(a), lookup(b)
    return la is not None and lb is not None and la.code == lb.code


def iter_tsv(
    path: Path, source_lang: str | None = None, target_lang: str | None = None
) -> Iterator[ParallelExample]:
    """Pairs from a TSV file, headerless ``source<TAB>target`` or with a header of language codes,
    read a line at a time.

    The first row is a header when every cell is a language code or ``id``. Languages come from
    the arguments, else the header (its two language columns, source first), else the file name.
    """
    rows = enumerate((line.split("\t") for line in iter_lines(path, allow_empty=True)), start=1)
    _, first_row = next(rows, (None, None))
    if first_row is None:
        raise DataFormatError(path, None, "no sentence pairs")
    is_header = all(c.strip() == ID_COLUMN or _is_language(c.strip()) for c in first_row)
    header = [c.strip() for c in first_row] if is_header else None
    source_lang, target_lang = _tsv_languages(path, header, source_lang, target_lang)
    if header is None:
        columns: dict[str, int | None] = {"source": 0, "target": 1, "id": None}
        width = 2
        rows = itertools.chain([(1, first_row)], rows)
    else:
        columns = {
            "source": _column(path, header, source_lang),
            "target": _column(path, header, target_lang),
            "id": header.index(ID_COLUMN) if ID_COLUMN in header else None,
        }
        width = len(header)
    for number, row in rows:
        yield _tsv_example(path, number, row, width, columns, source_lang, target_lang)


def read_tsv(
    path: Path, source_lang: str | None = None, target_lang: str | None = None
) -> list[ParallelExample]:
    return list(iter_tsv(path, source_lang, target_lang))


def _tsv_languages(
    path: Path, header: list[str] | None, source_lang: str | None, target_lang: str | None
) -> tuple[str, str]:
    if source_lang is not None and target_lang is not None:
        return source_lang, target_lang
    in_header = [c for c in header if c != ID_COLUMN] if header is not None else []
    if len(in_header) == 2:
        return in_header[0], in_header[1]
    from_name = languages_from_name(path)
    if from_name is not None:
        return from_name
    raise DataFormatError(
        path,
        1,
        "cannot tell the languages: give the TSV a header of language codes (e.g. 'en<TAB>de') "
        "or name the file after its direction (en-de.tsv)",
    )


def _column(path: Path, header: list[str], language: str) -> int:
    for index, name in enumerate(header):
        if name != ID_COLUMN and _same_language(name, language):
            return index
    raise DataFormatError(path, 1, f"no column for language '{language}' in the header {header}")


def _tsv_example(
    path: Path,
    number: int,
    row: list[str],
    width: int,
    columns: Mapping[str, int | None],
    source_lang: str,
    target_lang: str,
) -> ParallelExample:
    if len(row) != width:
        raise DataFormatError(path, number, f"{len(row)} tab-separated columns, expected {width}")
    texts = {}
    for role in ("source", "target"):
        text = row[columns[role]]  # type: ignore[index]
        if not text.strip():
            raise DataFormatError(path, number, f"empty {role} sentence")
        texts[role] = text
    sentence_id = row[columns["id"]].strip() if columns["id"] is not None else str(number)
    return ParallelExample(source_lang, target_lang, texts["source"], texts["target"], sentence_id)


# -- data sources and the hub -------------------------------------------------------------------------


def iter_parallel(data_source, source_lang: str, target_lang: str, split: str) -> Iterator[ParallelExample]:
    """One direction from a grid data source, a pair at a time: a ``SRC-TGT`` (or ``TGT-SRC``) TSV if
    the source has one, else the two languages' line-aligned files (ids from ``ids.txt`` beside
    them), else the hub."""
    from xltransfer.data.sources import HubSource

    if isinstance(data_source, HubSource):
        pair = f"{source_lang}-{target_lang}"
        config = (
            data_source.config.format(lang=pair, src=source_lang, tgt=target_lang)
            if data_source.config
            else None
        )
        yield from iter_parallel_rows(
            data_source.dataset,
            config,
            data_source.split_names.get(split, split),
            data_source.revision,
            source_lang,
            target_lang,
        )
        return
    tsv = data_source.locate("parallel", f"{source_lang}-{target_lang}", split)
    if tsv is not None:
        yield from iter_tsv(tsv, source_lang, target_lang)
        return
    reverse = data_source.locate("parallel", f"{target_lang}-{source_lang}", split)
    if reverse is not None:  # one TSV of pairs serves both directions
        yield from (e.reversed() for e in iter_tsv(reverse, target_lang, source_lang))
        return
    paths = {lang: data_source.locate("parallel", lang, split) for lang in (source_lang, target_lang)}
    absent = [lang for lang, path in paths.items() if path is None]
    if absent:
        raise ValueError(
            f"no {split} parallel data for {source_lang}-{target_lang} (none for {', '.join(absent)})"
        )
    yield from iter_aligned(
        paths[source_lang], paths[target_lang], source_lang, target_lang, ids_beside(paths[source_lang])
    )


def read_parallel(data_source, source_lang: str, target_lang: str, split: str) -> list[ParallelExample]:
    return list(iter_parallel(data_source, source_lang, target_lang, split))


def iter_parallel_rows(
    dataset: str, config: str | None, split: str, revision: str | None, source_lang: str, target_lang: str
) -> Iterator[ParallelExample]:
    """Pairs from a hub dataset: rows with a ``translation`` dict (WMT, OPUS-100) or one column per
    language. The dataset only has to hold both languages; the direction is the caller's. Rows are
    read from the dataset's memory-mapped files as they are asked for."""
    from xltransfer.data.hub import load_hub_split

    rows = load_hub_split(dataset, config, split, revision)
    where = Path(f"{dataset}/{config or 'default'}/{split}")
    for number, row in enumerate(rows, start=1):
        yield _hub_example(where, number, row, source_lang, target_lang)


def load_parallel_rows(
    dataset: str, config: str | None, split: str, revision: str | None, source_lang: str, target_lang: str
) -> list[ParallelExample]:
    return list(iter_parallel_rows(dataset, config, split, revision, source_lang, target_lang))


def _hub_example(where: Path, number: int, row: Mapping[str, Any], source_lang: str, target_lang: str):
    texts = row.get("translation") if isinstance(row.get("translation"), Mapping) else row
    sides = []
    for lang in (source_lang, target_lang):
        text = texts.get(lang)
        if not isinstance(text, str) or not text.strip():
            raise DataFormatError(where, number, f"no '{lang}' sentence (keys: {sorted(texts)})")
        sides.append(text)
    sentence_id = str(row.get("id", number))
    return ParallelExample(source_lang, target_lang, sides[0], sides[1], sentence_id)


# -- a direction's pairs on disk ------------------------------------------------------------------------

PAIR_COLUMNS = ("source", "target", "id")
ITERATION_ROWS = 1_000  # pairs turned into Python objects at a time when a corpus is iterated


class PairCorpus(Sequence):
    """One direction's pairs in a memory-mapped Arrow file (``read_pairs``): read by index, never
    held whole; items are ``ParallelExample``s as the list readers give them."""

    def __init__(self, folder: Path, fingerprint: str, source_lang: str, target_lang: str, ledger, what: str):
        import datasets

        self.folder = Path(folder)
        self.fingerprint = fingerprint
        self.source_lang, self.target_lang = source_lang, target_lang
        self.ledger = ledger
        self.what = what
        self._data = datasets.Dataset.from_file(str(self.folder / "pairs.arrow"))

    @property
    def cache_root(self) -> Path:
        return self.folder.parent.parent

    def __len__(self) -> int:
        return len(self._data)

    def _example(self, source: str, target: str, sentence_id: str) -> ParallelExample:
        return ParallelExample(self.source_lang, self.target_lang, source, target, sentence_id)

    def __getitem__(self, index):
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self)))]
        index = row_index(index, len(self), "pair")
        table = self._data.data
        return self._example(*(table.column(name)[index].as_py() for name in PAIR_COLUMNS))

    def __iter__(self):
        table = self._data.data
        for start in range(0, len(self), ITERATION_ROWS):
            part = table.slice(start, ITERATION_ROWS)
            columns = [part.column(name).to_pylist() for name in PAIR_COLUMNS]
            yield from (self._example(*row) for row in zip(*columns, strict=True))

    def dataset(self):
        """The pairs as a ``datasets.Dataset`` (columns ``PAIR_COLUMNS``)."""
        return self._data


def read_pairs(
    examples: Callable[[], Iterable[ParallelExample]],
    fingerprint: str,
    source_lang: str,
    target_lang: str,
    cache_root: Path,
    ledger,
    what: str,
) -> PairCorpus:
    """The direction's pairs ``examples()`` yields, read once into ``cache_root/pairs/<hash>`` (a
    ``cached_folder``, keyed by the data's ``fingerprint`` and the direction); ``ledger`` (a
    ``corpus.PrepLedger``) is charged the seconds it took."""
    import time

    from xltransfer.cached_folder import cached_folder
    from xltransfer.data.corpus import prep_key, write_strings

    key = prep_key("pairs", fingerprint, source_lang, target_lang)

    def build(staging: Path) -> None:
        started = time.perf_counter()
        rows = ((e.source, e.target, e.id) for e in examples())
        write_strings(staging / "pairs.arrow", PAIR_COLUMNS, rows)
        ledger.built(fingerprint, time.perf_counter() - started)

    folder = cached_folder(Path(cache_root) / "pairs", key, build, what=f"pairs of {what}")
    return PairCorpus(folder, fingerprint, source_lang, target_lang, ledger, what)


# -- training-data preparation ----------------------------------------------------------------------


@dataclass
class FilterResult:
    kept: list[ParallelExample]
    dropped: dict[str, int] = field(default_factory=lambda: {"empty": 0, "too_long": 0, "length_ratio": 0})

    @property
    def total_dropped(self) -> int:
        return sum(self.dropped.values())


def filter_pairs(
    examples: Iterable[ParallelExample],
    length: Callable[[str], int],
    max_tokens: int = MAX_TOKENS,
    max_ratio: float = MAX_LENGTH_RATIO,
) -> FilterResult:
    """Training pairs without over-long or badly proportioned sentences (Baziotis et al. 2022, §4).

    ``length`` counts a sentence's tokens; pass the subword vocabulary's count to follow the paper.
    A pair is dropped for the first reason that applies: a side with no token ("empty"), a side over
    ``max_tokens`` ("too_long"), or a longer/shorter ratio over ``max_ratio`` ("length_ratio").
    Only training data is filtered; a test set is translated whole.
    """
    result = FilterResult([])
    for example in examples:
        reason = _drop_reason(length(example.source or ""), length(example.target), max_tokens, max_ratio)
        if reason is None:
            result.kept.append(example)
        else:
            result.dropped[reason] += 1
    return result


def _drop_reason(source_len: int, target_len: int, max_tokens: int, max_ratio: float) -> str | None:
    if min(source_len, target_len) == 0:
        return "empty"
    if max(source_len, target_len) > max_tokens:
        return "too_long"
    if max(source_len, target_len) / min(source_len, target_len) > max_ratio:
        return "length_ratio"
    return None


def temperature_weights(sizes: Mapping[str, int], temperature: float) -> dict[str, float]:
    """Sampling probabilities proportional to p_L^(1/T) (Arivazhagan et al. 2019), so low-resource
    languages or directions are seen more often than their share of the data."""
    total = sum(sizes.values())
    if total == 0:
        raise ValueError("no data to sample from")
    raw = {name: (n / total) ** (1.0 / temperature) for name, n in sizes.items() if n > 0}
    norm = sum(raw.values())
    return {name: value / norm for name, value in raw.items()}
