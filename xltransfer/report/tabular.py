"""Result records as files for analysis elsewhere (pandas, R, spreadsheets): JSON Lines, CSV, Parquet.

One row per record, in the store's schema (``xltransfer/schema/result.schema.json``). JSON Lines
keeps nested fields as they are; CSV and Parquet are flat, so ``method_params``, ``source_languages``
and ``extra`` are JSON text in their columns (``json.loads`` them back).
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

from xltransfer.results import FIELDS, JSON_FIELDS

FORMATS = ("jsonl", "csv", "parquet")


def _flat(record: dict[str, Any]) -> dict[str, Any]:
    return {
        field: json.dumps(record[field], sort_keys=True) if field in JSON_FIELDS else record[field]
        for field in FIELDS
    }


def _json_line(record: dict[str, Any]) -> str:
    """The record's fields in schema order, nested mappings with sorted keys (stable bytes)."""
    fields = (f"{json.dumps(f)}: {json.dumps(record[f], sort_keys=True)}" for f in FIELDS)
    return "{" + ", ".join(fields) + "}\n"


def records_text(records: list[dict[str, Any]], fmt: str) -> str:
    """JSON Lines or CSV text of the records."""
    if fmt == "jsonl":
        return "".join(_json_line(r) for r in records)
    if fmt == "csv":
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=list(FIELDS), lineterminator="\n")
        writer.writeheader()
        writer.writerows(_flat(r) for r in records)
        return buffer.getvalue()
    raise ValueError(f"format {fmt!r} is not text (text formats: jsonl, csv)")


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

    table = pa.Table.from_pylist([_flat(r) for r in records], schema=_schema(pa))
    buffer = pa.BufferOutputStream()
    pq.write_table(table, buffer)
    atomic_write_bytes(path, buffer.getvalue().to_pybytes())


def _schema(pa):
    numbers = {"value": pa.float64(), "train_seconds": pa.float64(), "eval_seconds": pa.float64()}
    integers = {"shots", "seed", "trainable_params", "total_params", "batch_size", "schema_version"}
    return pa.schema([(f, numbers.get(f, pa.int64() if f in integers else pa.string())) for f in FIELDS])
