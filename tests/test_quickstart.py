"""The README's quickstart, exactly: `xlt run leaderboards/quickstart` offline, then again.

The slowest test of the suite (a few minutes on 2 cores): it is the acceptance of the whole
harness — every target scored for every method, in the shipped schema, both trained methods
above the majority-tag floor, unseen targets averaged apart from seen ones, and a second run
that trains and evaluates nothing.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import jsonschema
import pytest

from xltransfer.results import json_schema

ROOT = Path(__file__).resolve().parents[1]
TARGETS = {"qab", "qac", "qad", "qae"}


def xlt(*args: str, workdir: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "XLT_WORKDIR": str(workdir)}
    return subprocess.run(
        [sys.executable, "-m", "xltransfer.cli", *args],
        cwd=workdir.parent,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )


@pytest.mark.slow
def test_quickstart_end_to_end(tmp_path):
    # a copy of the leaderboard folder, so the report is written there and not into the checkout
    shutil.copytree(ROOT / "leaderboards" / "quickstart", tmp_path / "leaderboards" / "quickstart")
    workdir = tmp_path / "xlt"
    started = time.perf_counter()
    first = xlt("run", "leaderboards/quickstart", workdir=workdir)
    first_seconds = time.perf_counter() - started
    assert first.returncode == 0, first.stderr[-3000:]
    assert first_seconds < 600

    listing = xlt("results", "--json", workdir=workdir)
    records = json.loads(listing.stdout)
    for record in records:
        jsonschema.validate(record, json_schema())
    accuracy = {(r["method"], r["target_language"]): r["value"] for r in records if r["metric"] == "accuracy"}
    for method in ("full-ft", "mad-x"):
        assert {t for m, t in accuracy if m == method} == TARGETS
        for target in TARGETS:
            assert accuracy[(method, target)] > accuracy[("majority", target)], (method, target, accuracy)

    started = time.perf_counter()
    second = xlt("run", "leaderboards/quickstart", workdir=workdir)
    second_seconds = time.perf_counter() - started
    assert second.returncode == 0
    assert re.search(r"0 evaluated, 12 already done, 0 failed; pieces 0 trained", second.stderr), (
        second.stderr
    )
    assert second_seconds < 0.1 * first_seconds

    report = xlt("report", "leaderboards/quickstart", "--workdir", str(workdir), workdir=workdir)
    assert report.returncode == 0
    assert re.search(r"\| \*\*avg unseen\*\* \(\d+\) \|", report.stdout) and "qad (unseen)" in report.stdout
    board = tmp_path / "leaderboards" / "quickstart"
    readme, page = (board / "README.md").read_bytes(), (board / "index.html").read_text()
    assert (board / "figures" / "bars-pos-zero-shot.png").is_file()
    assert 'src="data:image/png;base64,' in page and "<table" in page
    assert "## Provenance" in readme.decode() and "xlt run leaderboards/quickstart" in readme.decode()
    again = xlt("report", "leaderboards/quickstart", "--workdir", str(workdir), workdir=workdir)
    assert again.returncode == 0 and (board / "README.md").read_bytes() == readme  # deterministic
