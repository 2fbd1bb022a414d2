"""A stored record no harness wrote (a value that is not a number, an ``extra`` that is not JSON) ends
`xlt run`, `xlt results` and `xlt report` with one line naming the store and the record (exit code 2),
and `xlt report` beside a grid on a read-only file system is one line too."""

from __future__ import annotations

import errno
import sqlite3
from pathlib import Path

import pytest
from test_store_faults import _store_copy, assert_one_line, finished, xlt  # noqa: F401 - fixture
from typer.testing import CliRunner

from xltransfer.cli import app

BAD = {
    "value not a number": ("value", "'lots'", "is not a number"),
    "extra not JSON": ("extra", "'{not json'", "extra is not JSON"),
}


@pytest.mark.parametrize("bad", sorted(BAD))
@pytest.mark.parametrize("command", ["results", "report", "run"])
def test_a_record_no_harness_wrote_is_one_line(bad, command, finished, tmp_path):  # noqa: F811
    workdir = _store_copy(finished, tmp_path)
    store = workdir / "results.sqlite"
    column, value, words = BAD[bad]
    with sqlite3.connect(store) as conn:
        (cell,) = conn.execute("SELECT cell_id FROM results LIMIT 1").fetchone()
        conn.execute(f"UPDATE results SET {column} = {value}")
    args = {
        "results": ["results", "--json"],
        "report": ["report", str(finished[0])],
        "run": ["run", str(finished[0]), "--quiet"],
    }[command]
    result = xlt(*args, "--workdir", str(workdir))
    if command == "run":  # the run's own summary, then the score table it ends with cannot be read
        assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
        last = result.stderr.strip().splitlines()[-1]
        assert last.startswith(f"error: {store}") and words in last and cell in last, result.stderr
        return
    assert_one_line(result, store, words, cell)


def test_report_on_a_read_only_file_system_is_one_line(finished, tmp_path, monkeypatch):  # noqa: F811
    import tempfile

    def read_only(*args, **kwargs):
        raise OSError(errno.EROFS, "Read-only file system", str(Path(kwargs.get("dir", "."))))

    monkeypatch.setattr(tempfile, "mkstemp", read_only)
    result = CliRunner().invoke(app, ["report", str(finished[0]), "--workdir", str(finished[1])])
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and "Read-only file system" in lines[0], result.output
    assert "cannot write the leaderboard" in lines[0] and str(finished[0].parent) in lines[0]
