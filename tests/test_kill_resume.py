"""A run killed with SIGKILL, or interrupted with SIGINT (Ctrl-C), mid-piece resumes: no record lost,
duplicated or changed, no finished piece retrained."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time

import pytest
from conftest import write_tiny_grid


def _ok_cells(db) -> int:
    if not db.exists():
        return 0
    try:
        with sqlite3.connect(db, timeout=5) as conn:
            return conn.execute("SELECT COUNT(DISTINCT cell_id) FROM results WHERE status='ok'").fetchone()[0]
    except sqlite3.OperationalError:
        return 0


def _rows(db) -> list[tuple]:
    with sqlite3.connect(db) as conn:
        return conn.execute(
            "SELECT cell_id, split, metric, value, run_id, created_at FROM results"
        ).fetchall()


def _stored(workdir) -> dict[str, str]:
    return {
        p.parent.name: json.loads(p.read_text())["created_at"]
        for p in (workdir / "artifacts").glob("*/*/info.json")
    }


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGINT], ids=["SIGKILL", "SIGINT"])
def test_killed_mid_piece_then_resume(sig, tmp_path, tiny_workdir):
    grid = write_tiny_grid(tmp_path / "g", targets="[qab, qac, qad]", la_steps=80)
    workdir = tiny_workdir
    db = workdir / "results.sqlite"
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    command = [sys.executable, "-m", "xltransfer.cli", "run", str(grid), "--workdir", str(workdir), "--quiet"]
    # SIGINT as a terminal sends it, whatever this process inherited: a shell without job control
    # starts background jobs with SIGINT ignored, and so would the run be
    process = subprocess.Popen(
        command,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    deadline = time.time() + 900
    # majority (3 cells) and full-ft (3 cells) finish first; kill while MAD-X pieces are training
    while _ok_cells(db) < 6 and time.time() < deadline and process.poll() is None:
        time.sleep(0.2)
    assert process.poll() is None, "the run ended before it could be killed"
    time.sleep(1.0)
    process.send_signal(sig)
    process.wait(timeout=120)  # an interrupted run ends by itself

    before_rows = _rows(db)
    before_pieces = _stored(workdir)
    assert 6 <= len({r[0] for r in before_rows}) < 9
    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"

    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=1200)  # a hang guard
    assert result.returncode == 0, result.stderr
    after_rows = _rows(db)
    keys = [(r[0], r[1], r[2]) for r in after_rows]
    assert len(keys) == len(set(keys)), "duplicated records"
    assert len({r[0] for r in after_rows}) == 9
    assert set(before_rows) <= set(after_rows), "a finished record changed or was lost"
    after_pieces = _stored(workdir)
    for key, created in before_pieces.items():
        assert after_pieces[key] == created, f"piece {key} was retrained"
    trained_now = len(after_pieces) - len(before_pieces)
    assert f"pieces {trained_now} trained" in result.stderr
