"""Result records and their embedded store (SQLite).

One record per (cell, split, metric), in one versioned schema (``schema/result.schema.json``).
A cell's records are written in one transaction, so a run killed at any moment leaves every
finished cell intact and no partial one.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from importlib import resources
from pathlib import Path
from typing import Any

from xltransfer.api import make_callable

SCHEMA_VERSION = 1
JSON_FIELDS = ("method_params", "source_languages", "extra")
FIELDS = (
    "schema_version",
    "run_id",
    "cell_id",
    "grid",
    "method",
    "variant",
    "method_params",
    "task",
    "setting",
    "shots",
    "partition",
    "source_languages",
    "target_language",
    "split",
    "metric",
    "value",
    "seed",
    "backbone",
    "backbone_revision",
    "trainable_params",
    "total_params",
    "train_seconds",
    "eval_seconds",
    "batch_size",
    "dtype",
    "device",
    "xltransfer_version",
    "created_at",
    "status",
    "error",
    "extra",
)
FILTERABLE = (
    "grid",
    "method",
    "variant",
    "task",
    "setting",
    "target_language",
    "split",
    "metric",
    "status",
    "run_id",
)


def json_schema() -> dict[str, Any]:
    return json.loads(resources.files("xltransfer").joinpath("schema/result.schema.json").read_text())


def now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


class ResultStore:
    def __init__(self, path: Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._connect() as conn:
            columns = ", ".join(f'"{f}"' for f in FIELDS)
            conn.execute(f"CREATE TABLE IF NOT EXISTS results ({columns})")
            conn.execute(
                "CREATE UNIQUE INDEX IF NOT EXISTS one_record ON results (grid, cell_id, split, metric)"
            )

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        conn = sqlite3.connect(self.path, timeout=60)
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=FULL")
            yield conn
        finally:
            conn.close()

    def write_cell(self, grid: str, cell_id: str, records: list[dict[str, Any]]) -> None:
        """Replace whatever the cell had (a failed attempt) with these records, atomically."""
        rows = [self._row(r) for r in records]
        with self._connect() as conn, conn:
            conn.execute("DELETE FROM results WHERE grid = ? AND cell_id = ?", (grid, cell_id))
            placeholders = ", ".join("?" for _ in FIELDS)
            conn.executemany(f"INSERT INTO results VALUES ({placeholders})", rows)

    def _row(self, record: dict[str, Any]) -> tuple:
        missing = [f for f in FIELDS if f not in record]
        if missing:
            raise ValueError(f"result record lacks {missing}")
        return tuple(json.dumps(record[f], sort_keys=True) if f in JSON_FIELDS else record[f] for f in FIELDS)

    def finished_cells(self, grid: str) -> set[str]:
        with self._connect() as conn:
            rows = conn.execute(
                "SELECT DISTINCT cell_id FROM results WHERE grid = ? AND status = 'ok'", (grid,)
            ).fetchall()
        return {r[0] for r in rows}

    def records(self, **filters: Any) -> list[dict[str, Any]]:
        where, values = [], []
        for key, value in filters.items():
            if value is None:
                continue
            if key not in FILTERABLE:
                raise ValueError(f"cannot filter on '{key}' (filterable: {', '.join(FILTERABLE)})")
            where.append(f'"{key}" = ?')
            values.append(value)
        sql = "SELECT * FROM results" + (f" WHERE {' AND '.join(where)}" if where else "")
        sql += " ORDER BY grid, cell_id, split, metric"
        with self._connect() as conn:
            rows = conn.execute(sql, values).fetchall()
        return [self._record(r) for r in rows]

    @staticmethod
    def _record(row: Iterable[Any]) -> dict[str, Any]:
        record = dict(zip(FIELDS, row, strict=True))
        for f in JSON_FIELDS:
            record[f] = json.loads(record[f])
        return record


make_callable(__name__)  # `xltransfer.results(...)` is `xltransfer.api.results(...)`
