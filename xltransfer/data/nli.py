"""NLI pairs from TSV (XNLI, AmericasNLI, MultiNLI) and JSONL (MultiNLI, XNLI) files, or the hub.

Files disagree on column names (``premise``/``sentence1``, ``hypothesis``/``sentence2``/``hypo``,
``label``/``gold_label``) and on label spelling (XNLI-MT TSVs say ``contradictory``), so columns
are found by header name and labels are mapped by name through one explicit table; a label
outside it is an error, never a guess. The one exception is MultiNLI's ``gold_label: "-"`` in
JSONL (annotators reached no consensus): such pairs have no label to learn or score against and
are skipped, as the MultiNLI authors do.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from xltransfer.data.lines import at_least_one, utf8_lines
from xltransfer.errors import DataFormatError

NLI_LABELS = ("entailment", "neutral", "contradiction")
_LABEL_NAMES = {**{label: label for label in NLI_LABELS}, "contradictory": "contradiction"}
PREMISE_FIELDS = ("premise", "sentence1")
HYPOTHESIS_FIELDS = ("hypothesis", "sentence2", "hypo")
LABEL_FIELDS = ("label", "gold_label")
ID_FIELDS = ("id", "pairID")
_NO_GOLD = "-"


@dataclass(frozen=True)
class NliPair:
    premise: str
    hypothesis: str
    label: str  # one of NLI_LABELS
    id: str | None
    line: int  # 1-based line in its file (row number for hub data)


def canonical_label(raw: Any) -> str | None:
    """The label's canonical name, or None when it is not an NLI label name."""
    return _LABEL_NAMES.get(raw.strip()) if isinstance(raw, str) else None


def same_text(a: str, b: str) -> bool:
    """Equal up to whitespace, which a TSV round trip may change (tabs and newlines in a text)."""
    return a.split() == b.split()


def read_nli(path: Path | str) -> list[NliPair]:
    """Pairs from a ``.jsonl`` file (one object per line) or else a TSV file with a header row."""
    return list(iter_nli(path))


def iter_nli(path: Path | str) -> Iterator[NliPair]:
    """``read_nli``'s pairs one at a time, the file read a line at a time (MultiNLI's 393K pairs are
    never held whole)."""
    path = Path(path)
    lines = utf8_lines(path, newline="")
    records = _jsonl_records(path, lines) if path.suffix == ".jsonl" else _tsv_records(path, lines)
    pairs = (pair for line, record in records if (pair := _pair(path, line, record)) is not None)
    return at_least_one(pairs, path, "sentence pairs")


def _first_present(names: Sequence[str], candidates: Sequence[str]) -> str | None:
    return next((c for c in candidates if c in names), None)


def _tsv_records(path: Path, lines: Iterable[str]) -> Iterator[tuple[int, dict[str, str]]]:
    # QUOTE_NONE: AmericasNLI has unbalanced quotes inside texts; a record is exactly one line
    reader = csv.reader(lines, delimiter="\t", quoting=csv.QUOTE_NONE)
    try:
        header = [name.strip() for name in next(reader, [])]
        _check_header(path, header)
        for row in reader:
            if not row:
                continue
            if len(row) != len(header):
                raise DataFormatError(
                    path, reader.line_num, f"{len(row)} tab-separated columns, the header has {len(header)}"
                )
            yield reader.line_num, dict(zip(header, row, strict=True))
    except csv.Error as err:
        raise DataFormatError(path, reader.line_num, str(err)) from err


def _check_header(path: Path, header: list[str]) -> None:
    for role, candidates in (
        ("premise", PREMISE_FIELDS),
        ("hypothesis", HYPOTHESIS_FIELDS),
        ("label", LABEL_FIELDS),
    ):
        if _first_present(header, candidates) is None:
            raise DataFormatError(path, 1, f"no {role} column in the header (one of {', '.join(candidates)})")


def _jsonl_records(path: Path, lines: Iterable[str]) -> Iterator[tuple[int, dict[str, Any]]]:
    for line_no, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as err:
            raise DataFormatError(path, line_no, f"invalid JSON ({err.msg})") from err
        if not isinstance(record, dict):
            raise DataFormatError(path, line_no, "expected one JSON object per line")
        yield line_no, record


def _pair(path: Path, line: int, record: dict[str, Any]) -> NliPair | None:
    """One pair, or None for a MultiNLI JSONL pair without a gold label."""
    label_field = _first_present(list(record), LABEL_FIELDS)
    if label_field is None:
        raise DataFormatError(path, line, f"no label field (one of {', '.join(LABEL_FIELDS)})")
    raw = record[label_field]
    if path.suffix == ".jsonl" and label_field == "gold_label" and raw == _NO_GOLD:
        return None
    label = canonical_label(raw)
    if label is None:
        raise DataFormatError(path, line, f"invalid label {raw!r} (expected one of {', '.join(NLI_LABELS)})")
    premise, hypothesis = (
        _text(path, line, record, fields) for fields in (PREMISE_FIELDS, HYPOTHESIS_FIELDS)
    )
    id_field = _first_present(list(record), ID_FIELDS)
    pair_id = str(record[id_field]).strip() if id_field is not None and record[id_field] is not None else ""
    return NliPair(premise, hypothesis, label, pair_id or None, line)


def _text(path: Path, line: int, record: dict[str, Any], fields: Sequence[str]) -> str:
    field = _first_present(list(record), fields)
    if field is None or not isinstance(record[field], str):
        raise DataFormatError(path, line, f"no text in a field named {' or '.join(fields)}")
    return record[field]


def write_nli_tsv(path: Path | str, pairs: Sequence[NliPair], labels: Sequence[str]) -> None:
    """A TSV that ``read_nli`` reads back: header id/premise/hypothesis/label, one pair a line."""

    def cell(value: str) -> str:
        return " ".join(value.split())  # a tab or newline inside a text would break the row

    lines = ["id\tpremise\thypothesis\tlabel"]
    for pair, label in zip(pairs, labels, strict=True):
        lines.append("\t".join((cell(pair.id or ""), cell(pair.premise), cell(pair.hypothesis), label)))
    Path(path).write_text("\n".join(lines) + "\n", encoding="utf-8")


def iter_nli_rows(dataset: str, config: str | None, split: str, revision: str | None) -> Iterator[NliPair]:
    """Pairs from a parquet NLI dataset (``facebook/xnli``, ``nyu-mll/multi_nli``), read from its
    memory-mapped files as they are asked for.

    ``label`` is a ClassLabel storing ids: each id is mapped through the feature's NAMES and then
    the label table, never by position, so a dataset ordering its classes differently still reads
    right. Id -1 is how ``datasets`` stores "no gold label"; those rows are skipped.
    """
    from xltransfer.data.hub import load_hub_split

    rows = load_hub_split(dataset, config, split, revision)
    where = Path(f"{dataset}/{config or 'default'}/{split}")
    columns = list(rows.column_names)
    fields = {
        role: _first_present(columns, candidates)
        for role, candidates in (("premise", PREMISE_FIELDS), ("hypothesis", HYPOTHESIS_FIELDS))
    }
    label_field = _first_present(columns, LABEL_FIELDS)
    if None in fields.values() or label_field is None:
        raise DataFormatError(where, None, f"needs premise, hypothesis and label columns, has {columns}")
    to_name = _hub_label_names(rows.features[label_field])
    id_field = _first_present(columns, ID_FIELDS)
    for index, row in enumerate(rows, start=1):
        raw = to_name(row[label_field])
        if raw is None:
            continue
        label = canonical_label(raw)
        if label is None:
            raise DataFormatError(where, index, f"invalid label {raw!r}")
        pair_id = str(row[id_field]) if id_field is not None else None
        yield NliPair(row[fields["premise"]], row[fields["hypothesis"]], label, pair_id, index)


def _hub_label_names(feature) -> Callable[[Any], str | None]:
    names = getattr(feature, "names", None)
    if names is None:
        return lambda value: None if value == _NO_GOLD else value
    return lambda value: None if value is None or value < 0 else names[value]
