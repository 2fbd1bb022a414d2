"""The README's quickstart, exactly: `xlt run leaderboards/quickstart > log 2>&1` offline, then again,
then `xlt report` into another folder and its page in headless Chromium.

The slowest test of the suite (a few minutes on 2 cores): it is the acceptance of the whole
harness — every target scored for every method, in the shipped schema, both trained methods
above the majority-tag floor; a log with a timestamped line for every piece and cell that ends
with the score table; every cell's predictions on disk; a second run that trains and evaluates
nothing; a report whose page shows each figure once, no raw Markdown, and a reproduce block with
the commit. Nothing here measures time: speed belongs in bench/ (the timeout is a hang guard).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest

from xltransfer.store import json_schema

ROOT = Path(__file__).resolve().parents[1]
TARGETS = {"qab", "qac", "qad", "qae"}
HANG_GUARD = 3 * 3600  # seconds: a hung run fails the suite instead of blocking it
LOG_LINE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d INFO ")


def xlt(*args: str, workdir: Path, log: Path | None = None) -> subprocess.CompletedProcess:
    """`xlt ARGS` in a subprocess; with ``log``, stdout and stderr both go to that file (no terminal)."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "XLT_WORKDIR": str(workdir)}
    command = [sys.executable, "-m", "xltransfer.cli", *args]
    if log is None:
        return subprocess.run(
            command, cwd=workdir.parent, env=env, capture_output=True, text=True, timeout=HANG_GUARD
        )
    with log.open("w") as handle:
        return subprocess.run(
            command, cwd=workdir.parent, env=env, stdout=handle, stderr=subprocess.STDOUT, timeout=HANG_GUARD
        )


@pytest.mark.slow
def test_quickstart_end_to_end(tmp_path, browser):
    # a copy of the leaderboard folder: nothing is written into the checkout
    shutil.copytree(ROOT / "leaderboards" / "quickstart", tmp_path / "leaderboards" / "quickstart")
    workdir = tmp_path / "xlt"
    log = tmp_path / "log"
    first = xlt("run", "leaderboards/quickstart", workdir=workdir, log=log)
    text = log.read_text()
    assert first.returncode == 0, text[-3000:]

    listing = xlt("results", "--json", workdir=workdir)
    records = json.loads(listing.stdout)
    for record in records:
        jsonschema.validate(record, json_schema())
    accuracy = {(r["method"], r["target_language"]): r["value"] for r in records if r["metric"] == "accuracy"}
    for method in ("full-ft", "mad-x"):
        assert {t for m, t in accuracy if m == method} == TARGETS
        for target in TARGETS:
            assert accuracy[(method, target)] > accuracy[("majority", target)], (method, target, accuracy)

    # the log (not a terminal): timestamped lines for every piece and cell, then the score table
    lines = text.splitlines()
    logged = [line for line in lines if LOG_LINE.match(line)]
    pieces = {key for r in records for key in r["extra"]["pieces"]}
    assert len(pieces) == 7  # 5 language adapters, 1 task adapter, 1 finetuned model
    assert sum(" started: " in line and "piece " in line for line in logged) == len(pieces)
    assert sum(re.search(r"piece \d+/7 done: .* in [\d.]+s", line) is not None for line in logged) == 7
    for cell in {r["cell_id"] for r in records}:
        assert any(f"scored: {cell}: accuracy " in line for line in logged), cell
    assert any("cell 12/12 scored" in line for line in logged)
    # no source-location column, no tokenizers trainer bars
    assert not any(
        re.search(r"progress\.py|Pre-processing sequences|Compute merges|Count pairs", x) for x in lines
    )
    table_start = next(i for i, line in enumerate(lines) if line.startswith("## pos · zero-shot"))
    assert table_start > max(i for i, line in enumerate(lines) if LOG_LINE.match(line))
    rows = [line for line in lines[table_start:] if line.startswith("|")]
    assert rows[-1].startswith("| **avg unseen** (2) |") and any("qad (unseen)" in row for row in rows)

    # every cell's predictions are on disk; `xlt evaluate` on one gives its stored value
    for record in records:
        assert (workdir / record["extra"]["predictions"]).is_file()
    record = next(r for r in records if r["method"] == "mad-x" and r["target_language"] == "qad")
    gold = next((workdir / "cache" / "synthetic").glob("*/ud/qad/qad_synth-ud-test.conllu"))
    predictions = workdir / record["extra"]["predictions"]
    scored = xlt(
        "evaluate",
        "--task",
        "pos",
        "--gold",
        str(gold),
        "--pred",
        str(predictions),
        "--json",
        workdir=workdir,
    )
    assert json.loads(scored.stdout)["accuracy"] == pytest.approx(record["value"], abs=1e-12)

    second = xlt("run", "leaderboards/quickstart", workdir=workdir)
    assert second.returncode == 0
    assert re.search(r"0 evaluated, 12 already done, 0 failed; pieces 0 trained", second.stderr), (
        second.stderr
    )

    out = tmp_path / "report"
    report = xlt(
        "report", "leaderboards/quickstart", "--workdir", str(workdir), "--out", str(out), workdir=workdir
    )
    assert report.returncode == 0, report.stderr
    assert re.search(r"\| \*\*avg unseen\*\* \(\d+\) \|", report.stdout) and "qad (unseen)" in report.stdout
    readme, page = (out / "README.md").read_bytes(), (out / "index.html").read_text()
    figures = sorted((out / "figures").glob("*.png"))
    assert [p.name for p in figures] == ["bars-pos-zero-shot.png", "efficiency.png"]
    assert all(p.with_suffix(".pdf").is_file() and p.with_suffix(".svg").is_file() for p in figures)
    assert "## Provenance" in readme.decode() and "xlt run leaderboards/quickstart" in readme.decode()
    mode = 0o666 & ~_umask()
    assert all(
        stat.S_IMODE(p.stat().st_mode) == mode for p in [out / "README.md", out / "index.html", *figures]
    )
    board = tmp_path / "leaderboards" / "quickstart"
    assert (board / "README.md").read_bytes() == (
        ROOT / "leaderboards" / "quickstart" / "README.md"
    ).read_bytes()

    # the page: each figure once, no raw Markdown, a multi-line reproduce block with the commit
    commit = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "HEAD"], capture_output=True, text=True)
    _check_page(browser, out / "index.html", len(figures), commit.stdout.strip(), tmp_path / "index.png")
    assert page.count('src="data:image/png;base64,') == len(figures) and "![" not in page

    latex = xlt("report", "leaderboards/quickstart", "--out", str(out), "--format", "latex", workdir=workdir)
    assert latex.returncode == 0 and r"\toprule" in (out / "leaderboard.tex").read_text()
    again = xlt(
        "report", "leaderboards/quickstart", "--workdir", str(workdir), "--out", str(out), workdir=workdir
    )
    assert again.returncode == 0 and (out / "README.md").read_bytes() == readme  # deterministic


def _check_page(browser, index: Path, figures: int, commit: str, screenshot: Path) -> None:
    from selenium.webdriver.common.by import By

    browser.get(index.as_uri())
    images = browser.find_elements(By.TAG_NAME, "img")
    assert len(images) == figures
    assert all(browser.execute_script("return arguments[0].naturalWidth", img) > 0 for img in images)
    text = browser.find_element(By.TAG_NAME, "main").text
    assert "![" not in text and "```" not in text
    (block,) = [pre.text for pre in browser.find_elements(By.TAG_NAME, "pre")]
    assert len(block.splitlines()) >= 5 and (not commit or f"git checkout {commit}" in block)
    assert block.splitlines()[-1].startswith("xlt report leaderboards/quickstart")
    height = browser.execute_script("return document.documentElement.scrollHeight")
    browser.set_window_size(1024, min(int(height) + 100, 8000))
    browser.save_screenshot(str(screenshot))  # for a person to look at: pytest keeps tmp_path
    browser.set_window_size(1024, 900)


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask
