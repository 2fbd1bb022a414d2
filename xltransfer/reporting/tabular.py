"""Result records as rows for analysis elsewhere (pandas, R, spreadsheets): JSON Lines, CSV, Parquet,
and the DataFrame of ``xltransfer.results``.

JSON Lines keeps each record as it is stored (nested ``method_params`` and ``extra``). The flat
formats give every fact its own column: the record's fields (``source_languages`` as ``en+de``),
``params.<name>`` for each method parameter (empty where it configures another task: a POS
row has no ``params.mt_steps``), and ``extra.<path>`` for each scalar in ``extra``
(``extra.source_test.accuracy``, ``extra.few_shot_sample.content_sha256``...), lists as JSON text.
Maps keyed by pieces are summarised by role: ``extra.adapter_perplexity.source`` / ``.target`` is
the held-out perplexity of the most specific adapter covering the cell's source / target language
(the whole map stays in ``extra.adapter_perplexity`` as JSON). Values are raw, as stored.
"""

from __future__ import annotations

import csv
import io
import json
import re
from pathlib import Path
from typing import Any

from xltransfer.method import parameter_task
from xltransfer.store import FIELDS

FORMATS = ("jsonl", "csv", "parquet")
PARAMS_PREFIX = "params."
EXTRA_PREFIX = "extra."
# maps keyed by piece key or label: one column of JSON text, not a column per piece
PER_PIECE = frozenset({"piece_costs", "adapter_perplexity", "measured_under_load"})
_PIECE_LANGUAGES = re.compile(r"\[([^\]]*)\]$")


def flat_record(record: dict[str, Any]) -> dict[str, Any]:
    """One row: the record's scalar fields, then ``params.*`` and ``extra.*`` columns."""
    row: dict[str, Any] = {}
    for field in FIELDS:
        if field == "method_params":
            for name, value in sorted((record[field] or {}).items()):
                if parameter_task(name) in (None, record["task"]):  # not another task's (mt_steps)
                    row[PARAMS_PREFIX + name] = _scalar(value)
        elif field == "extra":
            _flatten(record[field] or {}, EXTRA_PREFIX, row)
            row.update(_adapter_roles(record))
        elif field == "source_languages":
            row[field] = "+".join(record[field])
        else:
            row[field] = record[field]
    return row


def flat_rows(records: list[dict[str, Any]]) -> tuple[list[str], list[dict[str, Any]]]:
    """The rows and their columns: the record's fields in schema order, then every ``params.*``
    and ``extra.*`` column any record has, sorted (missing values are None)."""
    rows = [flat_record(r) for r in records]
    base = [f for f in FIELDS if f not in ("method_params", "extra")]
    more = sorted({c for row in rows for c in row} - set(base))
    params = [c for c in more if c.startswith(PARAMS_PREFIX)]
    extra = [c for c in more if not c.startswith(PARAMS_PREFIX)]
    return base + params + extra, rows


def _flatten(value: Any, prefix: str, row: dict[str, Any]) -> None:
    for name, item in sorted(value.items()):
        column = prefix + str(name)
        if isinstance(item, dict) and item and name not in PER_PIECE:
            _flatten(item, column + ".", row)
        else:
            row[column] = _scalar(item)


def _scalar(value: Any) -> Any:
    return json.dumps(value, sort_keys=True) if isinstance(value, (dict, list, tuple)) else value


def _adapter_roles(record: dict[str, Any]) -> dict[str, float]:
    """The perplexity of the adapter a cell's source and target use: of the pieces with a held-out
    perplexity whose languages include the language, the one with the fewest languages."""
    perplexities = (record.get("extra") or {}).get("adapter_perplexity") or {}
    sources = record.get("source_languages") or [None]
    languages = {"source": sources[0], "target": record.get("target_language")}
    found = {}
    for role, language in languages.items():
        covering = []
        for piece, value in perplexities.items():
            match = _PIECE_LANGUAGES.search(piece)
            members = match.group(1).split("+") if match else []
            if language in members:
                covering.append((len(members), piece, value))
        if covering:
            found[f"{EXTRA_PREFIX}adapter_perplexity.{role}"] = min(covering)[2]
    return found


def _json_line(record: dict[str, Any]) -> str:
    """The record's fields in schema order, nested mappings with sorted keys (stable bytes)."""
    fields = (f"{json.dumps(f)}: {json.dumps(record[f], sort_keys=True)}" for f in FIELDS)
    return "{" + ", ".join(fields) + "}\n"


def records_text(records: list[dict[str, Any]], fmt: str) -> str:
    """JSON Lines or CSV text of the records."""
    if fmt == "jsonl":
        return "".join(_json_line(r) for r in records)
    if fmt == "csv":
        columns, rows = flat_rows(records)
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=columns, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
        return buffer.getvalue()
    raise ValueError(f"format {fmt!r} is not text (text formats: jsonl, csv)")


def records_frame(records: list[dict[str, Any]]):
    """The flat rows as a pandas DataFrame (one row per record)."""
    import pandas as pd

    columns, rows = flat_rows(records)
    return pd.DataFrame(rows, columns=columns)


def write_records(records: list[dict[str, Any]], fmt: str, path: Path) -> None:
    """Write the records to ``path`` atomically in ``fmt`` (jsonl, csv or parquet)."""
    from xltransfer.util import atomic_write_bytes, atomic_write_text

    if fmt not in FORMATS:
        raise ValueError(f"unknown format {fmt!r} (known: {', '.join(FORMATS)})")
    if fmt != "parquet":
        atomic_write_text(path, records_text(records, fmt))
        return
    import pyarrow as pa
    import pyarrow.parquet as pq

    columns, rows = flat_rows(records)
    table = pa.Table.from_pylist(rows, schema=_schema(pa, columns, rows))
    buffer = pa.BufferOutputStream()
    pq.write_table(table, buffer)
    atomic_write_bytes(path, buffer.getvalue().to_pybytes())


def _schema(pa, columns: list[str], rows: list[dict[str, Any]]):
    """The record's fields typed as the JSON Schema types them; a params/extra column as what its
    values are (numbers, booleans), text when they are of mixed kinds."""
    numbers = {"value", "train_seconds", "eval_seconds"}
    integers = {"shots", "seed", "trainable_params", "total_params", "batch_size", "schema_version"}
    fields = []
    for column in columns:
        if column in numbers:
            kind = pa.float64()
        elif column in integers:
            kind = pa.int64()
        elif column in FIELDS or column == "source_languages":
            kind = pa.string()
        else:
            kind = _column_type(pa, [row.get(column) for row in rows])
            if kind == pa.string():
                for row in rows:
                    if row.get(column) is not None and not isinstance(row[column], str):
                        row[column] = json.dumps(row[column])
        fields.append((column, kind))
    return pa.schema(fields)


def _column_type(pa, values: list[Any]):
    kinds = {type(v) for v in values if v is not None}
    if kinds == {bool}:
        return pa.bool_()
    if kinds and kinds <= {int}:
        return pa.int64()
    if kinds and kinds <= {int, float}:
        return pa.float64()
    return pa.string()
