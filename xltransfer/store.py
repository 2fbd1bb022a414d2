"""Result records and their embedded store (SQLite).

One record per (cell, split, metric), in one versioned schema (``schema/result.schema.json``).
A cell's records are written in one transaction, so a run killed at any moment leaves every
finished cell intact and no partial one.
"""

from __future__ import annotations

import json
import os
import sqlite3
import uuid
from collections.abc import Iterable, Iterator, Mapping
from contextlib import closing, contextmanager
from datetime import datetime, timezone
from importlib import resources
from pathlib import Path
from typing import Any

from xltransfer.errors import StoreError

SCHEMA_VERSION = 1
# extra["fingerprint"] of an ok record: the cell's fingerprint when it was evaluated (its pieces'
# keys, its test data, the backbone); optional in the schema, so records written before it stay valid
FINGERPRINT = "fingerprint"
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
    """The store at ``path``; ``read_only`` for readers (``xlt results``, ``xlt report``), which must
    work on a store they cannot write and must never create, migrate or lock one.

    Every fault of the file (a folder, zero bytes, corrupt, truncated, read-only, a full disk) is a
    ``StoreError`` naming the path, which the CLI prints as one line (exit code 2)."""

    def __init__(self, path: Path, read_only: bool = False):
        self.path = Path(path)
        self.read_only = read_only
        self._check_file()
        if read_only:
            with self._connect() as conn:  # a file that is not a results store fails here, readably
                conn.execute("SELECT 1 FROM results LIMIT 1").fetchall()
            return
        if not self.path.exists():
            self._create()
        with self._connect() as conn:
            self._create_table(conn)

    def _check_file(self) -> None:
        if self.path.is_dir():
            raise StoreError(self.path, "is a folder, not a results store (pass --results FILE)")
        if not self.path.exists():
            if self.read_only:
                raise StoreError(self.path, "no results store here (run `xlt run` first, or pass --results)")
            return
        if self.path.stat().st_size == 0:  # never taken for a new, empty store: results may be lost
            raise StoreError(
                self.path,
                "the results store is an empty file (0 bytes), not a store: restore it from a copy, "
                "or remove it to start a new one",
            )

    def _create(self) -> None:
        """A new store appears complete under its name (built beside it, then linked into place), so
        a concurrent run never sees a half-made, zero-byte file."""
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            building = self.path.with_name(f".{self.path.name}.{uuid.uuid4().hex}.new")
            try:
                with closing(sqlite3.connect(building)) as conn, conn:
                    self._create_table(conn)
                try:
                    os.link(building, self.path)
                except FileExistsError:  # another run created it meanwhile: use theirs
                    pass
            finally:
                building.unlink(missing_ok=True)
        except sqlite3.DatabaseError as error:
            raise StoreError(self.path, store_problem(error)) from None
        except OSError as error:
            reason = error.strerror or error
            raise StoreError(self.path, f"cannot create the results store ({reason})") from None

    @staticmethod
    def _create_table(conn: sqlite3.Connection) -> None:
        columns = ", ".join(f'"{f}"' for f in FIELDS)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute(f"CREATE TABLE IF NOT EXISTS results ({columns})")
        conn.execute("CREATE UNIQUE INDEX IF NOT EXISTS one_record ON results (grid, cell_id, split, metric)")

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        """A connection; SQLite's faults become a StoreError naming the file (an IntegrityError stays
        what it is: a record the harness built wrong, not a fault of the store)."""
        try:
            conn = self._open()
            try:
                if not self.read_only:
                    conn.execute("PRAGMA journal_mode=WAL")
                    conn.execute("PRAGMA synchronous=FULL")
                yield conn
            finally:
                conn.close()
        except sqlite3.IntegrityError:
            raise
        except sqlite3.DatabaseError as error:
            raise StoreError(self.path, store_problem(error)) from None

    def _open(self) -> sqlite3.Connection:
        if not self.read_only:
            return sqlite3.connect(self.path, timeout=60)
        # read-only, and readable where nothing can be written: a store in WAL mode needs its -shm
        # file to be read with mode=ro; in a read-only folder it is opened as immutable instead
        uri = f"{self.path.resolve().as_uri()}?mode=ro"
        conn = sqlite3.connect(uri, uri=True, timeout=60)
        try:
            conn.execute("SELECT count(*) FROM sqlite_master").fetchall()
        except sqlite3.OperationalError:
            conn.close()
            if os.access(self.path.parent, os.W_OK) and os.access(self.path, os.W_OK):
                raise
            conn = sqlite3.connect(f"{self.path.resolve().as_uri()}?immutable=1", uri=True, timeout=60)
        return conn

    def write_cell(self, grid: str, cell_id: str, records: list[dict[str, Any]]) -> None:
        """Replace whatever the cell had (a failed attempt, stale records) with these, atomically."""
        if self.read_only:
            raise StoreError(self.path, "opened read-only: cannot write results")
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

    def finished_cells(self, grid: str, fingerprints: Mapping[str, str]) -> set[str]:
        """The cells of ``fingerprints`` (cell id -> what its records must have been computed from:
        ``Plan.cell_fingerprint``) whose ok records carry that fingerprint. A record computed from
        other pieces, other test data or another backbone is stale, and so is one written before
        fingerprints were recorded: its cell is evaluated again (and its records replaced)."""
        with self._connect() as conn:
            rows = conn.execute(
                "SELECT cell_id, extra FROM results WHERE grid = ? AND status = 'ok'", (grid,)
            ).fetchall()
        return {
            cell_id
            for cell_id, extra in rows
            if cell_id in fingerprints
            and self._json(extra, f"the record of cell {cell_id}", "extra").get(FINGERPRINT)
            == fingerprints[cell_id]
        }

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

    def _record(self, row: Iterable[Any]) -> dict[str, Any]:
        """A stored row as a record; a row no harness wrote (a value that is not a number, a JSON
        field that is not JSON) is a StoreError naming the record, not a traceback in a reader."""
        record = dict(zip(FIELDS, row, strict=True))
        name = f"the record {record['grid']}/{record['cell_id']}/{record['split']}/{record['metric']}"
        value = record["value"]
        if value is not None and (isinstance(value, bool) or not isinstance(value, int | float)):
            raise StoreError(self.path, f"{name}: value {value!r} is not a number")
        for f in JSON_FIELDS:
            record[f] = self._json(record[f], name, f)
        return record

    def _json(self, text: Any, name: str, field: str) -> Any:
        try:
            value = json.loads(text)
        except (TypeError, ValueError):
            raise StoreError(self.path, f"{name}: its {field} is not JSON ({str(text)[:40]!r})") from None
        if field == "extra" and not isinstance(value, dict):
            raise StoreError(self.path, f"{name}: its extra is not a JSON object ({str(text)[:40]!r})")
        return value


def store_problem(error: sqlite3.DatabaseError) -> str:
    """What a SQLite fault means for the user, in one line."""
    message = str(error)
    if "disk is full" in message or "database or disk is full" in message:
        return f"cannot write results: the disk is full ({message}); free space and run again"
    if "readonly" in message or "read-only" in message:
        return f"cannot write results: the store is read-only ({message})"
    if "not a database" in message or "malformed" in message or "no such table" in message:
        return (
            f"not a readable results store ({message}): corrupt or truncated? restore it from a copy, "
            "or move it aside to start a new one"
        )
    if "unable to open" in message:
        return f"cannot open the results store ({message}): check the path and its permissions"
    return f"results store error: {message}"
