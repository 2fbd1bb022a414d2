"""A results store or workdir that cannot be used is one line naming its path and exit code 2, never a
traceback: a corrupt, truncated, zero-byte or folder store, a read-only store (which readers still
read), a read-only or file workdir, a full disk while results are written, a truncated predictions
file; and `xlt report` with no results leaves a rendered leaderboard alone."""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from xltransfer.cli import app
from xltransfer.execute.local import run_local
from xltransfer.grid import load_grid
from xltransfer.planning import build_plan
from xltransfer.progress import SilentProgress
from xltransfer.workspace import Workspace

GRID = """name: faults
backbone: backbone
data: {{pos: {{type: ud, root: {ud}}}}}
methods: [majority]
tasks: [pos]
languages: {{source: mt, target: {targets}}}
"""


def write_grid(folder: Path, ud: Path, targets: str = "[kk]") -> Path:
    """The majority baseline on real UD data (Maltese to Kazakh): trains nothing, needs no weights."""
    from transformers import BertConfig

    folder.mkdir(parents=True, exist_ok=True)
    if not (folder / "backbone").exists():
        config = BertConfig(
            vocab_size=100, hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=64
        )
        config.save_pretrained(folder / "backbone")
    (folder / "grid.yaml").write_text(GRID.format(ud=ud / "ud", targets=targets))
    return folder / "grid.yaml"


@pytest.fixture(scope="module")
def finished(tmp_path_factory, shared_data) -> tuple[Path, Path]:
    """(grid file, workdir) after a finished run."""
    root = tmp_path_factory.mktemp("faults")
    grid = write_grid(root / "g", shared_data)
    workspace = Workspace.at(root / "w")
    summary = run_local(build_plan(load_grid(grid, workspace.root)), workspace, SilentProgress())
    assert summary.counters["cells_evaluated"] == 1 and not summary.failures
    return grid, workspace.root


def xlt(*args: str, drop_privileges: bool = False) -> subprocess.CompletedProcess:
    """The CLI in a subprocess; ``drop_privileges``: without root's power to write read-only files."""
    prefix: list[str] = []
    if drop_privileges and os.geteuid() == 0:
        if shutil.which("setpriv") is None:
            pytest.skip("running as root without setpriv: cannot make a file read-only for this process")
        prefix = ["setpriv", "--bounding-set=-all", "--inh-caps=-all", "--"]
    return subprocess.run(
        [*prefix, sys.executable, "-m", "xltransfer.cli", *args],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "HF_HUB_OFFLINE": "1"},
    )


def assert_one_line(result: subprocess.CompletedProcess, path: Path, *words: str) -> None:
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.returncode == 2, result.stderr
    assert len(lines) == 1 and lines[0].startswith("error:"), result.stderr
    assert str(path) in lines[0] and all(w in lines[0] for w in words), lines[0]


def _store_copy(finished, tmp_path: Path) -> Path:
    workdir = tmp_path / "w"
    shutil.copytree(finished[1], workdir)
    return workdir


def _corrupt(store: Path) -> None:
    store.write_bytes(os.urandom(8192))


def _truncate(store: Path) -> None:
    conn = sqlite3.connect(store)
    with conn:  # enough records to span many pages, then everything into the main file
        conn.executemany(
            "INSERT INTO results (grid, cell_id, split, metric, method_params, source_languages, extra) "
            "VALUES ('other', ?, 'test', 'x', '{}', '[]', '{}')",
            [(f"cell-{i}-{'x' * 200}",) for i in range(400)],
        )
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    store.write_bytes(store.read_bytes()[: store.stat().st_size // 2])


def _empty(store: Path) -> None:
    store.write_bytes(b"")


def _folder(store: Path) -> None:
    store.unlink()
    store.mkdir()


FAULTS = {
    "corrupt": (_corrupt, "not a readable results store"),
    "truncated": (_truncate, "not a readable results store"),
    "zero bytes": (_empty, "0 bytes"),
    "a folder": (_folder, "is a folder"),
}


@pytest.mark.parametrize("fault", sorted(FAULTS))
@pytest.mark.parametrize("command", ["results", "report", "run"])
def test_a_broken_store_is_one_line(fault, command, finished, tmp_path):
    workdir = _store_copy(finished, tmp_path)
    store = workdir / "results.sqlite"
    damage, words = FAULTS[fault]
    damage(store)
    args = {
        "results": ["results", "--json"],
        "report": ["report", str(finished[0])],
        "run": ["run", str(finished[0])],
    }
    result = xlt(*args[command], "--workdir", str(workdir))
    assert_one_line(result, store, words)
    if fault == "zero bytes":
        assert store.stat().st_size == 0  # reported, never taken for a new store


def test_a_read_only_store_is_still_read(finished, tmp_path):
    workdir = _store_copy(finished, tmp_path)
    for path in (workdir / "results.sqlite", workdir):
        path.chmod(0o555 if path.is_dir() else 0o444)
    try:
        listed = xlt("results", "--json", "--workdir", str(workdir), drop_privileges=True)
        assert listed.returncode == 0, listed.stderr
        assert '"metric": "accuracy"' in listed.stdout
        grid = finished[0].parent
        grid.chmod(0o777)  # the report itself is written beside the grid
        report = xlt("report", str(finished[0]), "--workdir", str(workdir), drop_privileges=True)
        assert report.returncode == 0, report.stderr
        assert "majority" in (grid / "README.md").read_text()
    finally:
        workdir.chmod(0o755)


def test_a_read_only_or_file_workdir_is_one_line(finished, tmp_path):
    workdir = tmp_path / "w"
    workdir.mkdir()
    workdir.chmod(0o555)
    try:
        result = xlt("run", str(finished[0]), "--workdir", str(workdir), drop_privileges=True)
        assert_one_line(result, workdir, "cannot write")
    finally:
        workdir.chmod(0o755)
    afile = tmp_path / "a-file"
    afile.write_text("not a folder")
    assert_one_line(xlt("run", str(finished[0]), "--workdir", str(afile)), afile, "is a file")


class _FullDisk(sqlite3.Connection):
    """SQLite's own answer when the disk fills up during a write (SQLITE_FULL)."""

    def executemany(self, *args, **kwargs):
        raise sqlite3.OperationalError("database or disk is full")


def test_a_full_disk_while_writing_results_is_one_line(finished, tmp_path, shared_data, monkeypatch):
    workdir = _store_copy(finished, tmp_path)
    grid = write_grid(tmp_path / "g", shared_data, "[kk, yo]")  # one more cell to write
    before = Workspace.at(workdir).read_results().records()
    connect = sqlite3.connect
    monkeypatch.setattr(sqlite3, "connect", lambda *a, **k: connect(*a, **k, factory=_FullDisk))
    result = CliRunner().invoke(app, ["run", str(grid), "--workdir", str(workdir), "--quiet"])
    monkeypatch.setattr(sqlite3, "connect", connect)
    assert result.exit_code == 2, result.output
    store = workdir / "results.sqlite"
    assert f"{store}: cannot write results: the disk is full" in result.output
    assert "Traceback" not in result.output
    assert Workspace.at(workdir).read_results().records() == before


def test_a_truncated_predictions_file_is_one_line(finished, tmp_path):
    workdir = _store_copy(finished, tmp_path)
    (statistics,) = (workdir / "predictions").glob("*.json")
    statistics.write_text(statistics.read_text()[:50])
    # a second method whose marks compare with the majority baseline's statistics (its own record
    # is the majority's, under its cell's id: the report reads both statistics files)
    both = finished[0].with_name("both.yaml")
    both.write_text(finished[0].read_text().replace("[majority]", "[majority, full-ft]"))
    other = next(c for c in load_grid(both, workdir).cells() if c.method == "full-ft")
    (record,) = Workspace.at(workdir).read_results().records()
    record.update(cell_id=other.cell_id, method="full-ft", method_params=other.params.to_dict())
    record["extra"]["fingerprint"] = build_plan(load_grid(both, workdir)).cell_fingerprint(other)
    Workspace.at(workdir).results.write_cell("faults", other.cell_id, [record])
    result = xlt("report", str(both), "--baseline", "majority", "--workdir", str(workdir))
    assert_one_line(result, statistics, "truncated or corrupt")


def test_report_without_results_leaves_a_rendered_leaderboard(finished, tmp_path):
    grid = finished[0]
    first = xlt("report", str(grid), "--workdir", str(finished[1]))
    assert first.returncode == 0, first.stderr
    rendered = (grid.parent / "README.md").read_text()
    empty = tmp_path / "empty"
    result = xlt("report", str(grid), "--workdir", str(empty))
    assert_one_line(result, empty / "results.sqlite", "left as it is")
    assert (grid.parent / "README.md").read_text() == rendered
